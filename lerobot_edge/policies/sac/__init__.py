"""SAC (LeRobot `sac`, 0.4.x): the actor (and the discrete critic's head when present) on the edge."""
