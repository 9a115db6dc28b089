"""The PaliGemma + Gemma-expert stack pi0 and pi05 share: config, Gemma decoder, model and graphs, graph plan."""
