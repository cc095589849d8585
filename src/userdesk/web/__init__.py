"""The web adapters: the console (admins), the portal (end users) and the JSON API."""
