"""Keys the suite's servers run with: not the dev defaults, so that a test shows what a deployment does (a keyed
bucket, sealed objections) rather than what only `debar up` does."""

from __future__ import annotations

from debar.common.settings import DEV_BUCKET_KEY
from debar.sanction.domain.decision_ids import DecisionIds
from debar.sanction.domain.decisions import DecisionAddress

TEST_BUCKET_KEY = "test-bucket-key-of-32-bytes-or-more"
TEST_OBJECTION_KEYS = "ob1:test-objection-key-of-32-bytes-or-more"


def where(decision_id: str) -> DecisionAddress:
    """Where a decision id's decision is in the log (its record, bucket and index): what only the bucket key's holder
    can tell. Tries the suite's key, then the dev key (servers started without DEBAR_BUCKET_KEY)."""
    for key in (TEST_BUCKET_KEY, DEV_BUCKET_KEY):
        located = DecisionIds.for_bucket_key(key).locate(decision_id)
        if located is not None and located.address is not None:
            return located.address
    raise AssertionError(f"{decision_id!r} is no logged decision's id under the suite's keys")


# The log's signer key the suite's sanction servers sign checkpoints with (fixed, so that every process of a run
# and `debar log verify` in a test agree on it): a test key, public in this file.
TEST_LOG_ORIGIN = "debar.test/log"
TEST_LOG_SIGNER_KEY = "PRIVATE+KEY+debar.test/log+196204ad+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
TEST_LOG_VERIFIER_KEY = "debar.test/log+196204ad+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"


def log_signing_key_file_for_tests() -> str:
    """A file holding TEST_LOG_SIGNER_KEY (one per test process), for DEBAR_LOG_SIGNING_KEY."""
    import os
    import tempfile
    from pathlib import Path

    path = Path(tempfile.gettempdir()) / f"debar-test-log-{os.getpid()}.key"
    if not path.exists():
        path.write_text(TEST_LOG_SIGNER_KEY + "\n")
        path.chmod(0o600)
    return str(path)


def log_verify_env(data_dir: object, bucket_key: str = "") -> dict[str, str]:
    """What `debar log verify` needs beside Redis, for a server started by the suite with DEBAR_DATA_DIR=data_dir:
    the log's key (the suite's signer key file), where that server stored its checkpoints, and its bucket key when
    it had one (decision entries name decisions by external id, which the bucket key makes)."""
    env = {"DEBAR_LOG_SIGNING_KEY": log_signing_key_file_for_tests(), "DEBAR_DATA_DIR": str(data_dir)}
    return {**env, "DEBAR_BUCKET_KEY": bucket_key} if bucket_key else env
