"""The domain services, one module each (railway, hotel, realestate, procurement: its rules and its servicer), and
what they share: the checks rules ask for, the Judge, the sanction client, the verdict, and the runner's table."""
