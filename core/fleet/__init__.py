"""Fleet management: assets (machines) and the sensors linked to them."""
