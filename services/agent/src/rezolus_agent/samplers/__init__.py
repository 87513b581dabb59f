"""One module per sampler; ``rezolus_agent.registry`` lists them."""
