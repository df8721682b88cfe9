"""Off-policy safe RL: SAC with a cost critic, a replay buffer in the train state, and the
driver that runs it (`driver.DRIVER`, a train.Driver), reached through the registry's
`Algorithm.driver` like the on-policy algorithms through jaxcrl/train.py."""
