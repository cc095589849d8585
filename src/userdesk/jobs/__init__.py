"""Jobs: long work (bulk actions, later imports and exports) run by the worker, with progress."""
