"""Access: roles and their permissions, teams, groups, and who may do what."""
