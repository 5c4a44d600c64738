"""Other registries' exports -> a contract folder that `registry ingest` reads."""
