"""The portal: the pages end users (and admins) sign in and out with."""
