"""Keys the suite's servers run with: not the dev defaults, so that a test shows what a deployment does (a keyed
bucket, sealed objections) rather than what only `debar up` does."""

from __future__ import annotations

TEST_BUCKET_KEY = "test-bucket-key-of-32-bytes-or-more"
TEST_OBJECTION_KEYS = "ob1:test-objection-key-of-32-bytes-or-more"
