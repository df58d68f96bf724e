"""decide's pure core (issue #6): signals (layer 1), their combination (layer 2), structure
choice (layer 3) and sizing (layer 4). No I/O, no clock, no environment."""
