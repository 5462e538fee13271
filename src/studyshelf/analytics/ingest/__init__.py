"""Moving events from the buffer into the warehouse: at least once, with duplicates dropped by id."""
