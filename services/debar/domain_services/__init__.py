"""What every domain service shares: the subject checks its rules ask for, the sanction client, the verdict."""
