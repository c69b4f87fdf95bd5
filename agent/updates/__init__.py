"""Weekly vendor update windows and the playbooks run in them."""
