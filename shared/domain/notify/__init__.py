"""notify's pure core: what a tenant is told, on which channel, and when."""
