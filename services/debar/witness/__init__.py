"""`debar witness`: a c2sp.org/tlog-witness witness as its own process, with its own cosigning key and its own
state folder (state_store), serving add-checkpoint over HTTP (app, main). The decision itself is the pure
tlog.witness.Witness."""
