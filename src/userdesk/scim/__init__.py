"""SCIM 2.0 provisioning: tokens, and the mapping of SCIM resources to users and groups."""
