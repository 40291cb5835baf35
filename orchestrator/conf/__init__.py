"""Settings, in parts: the environment's readers, what the console and its agents share, the agent's own."""
