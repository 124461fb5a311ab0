"""Strategy selection: task analysis, agent sequences and the adaptive strategy ranker."""
