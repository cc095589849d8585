"""A minimal Django project whose admin changelist the bench sets beside the console."""
