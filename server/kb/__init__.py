"""The knowledge base's pure parts: item records, the state rule, consolidation and the
portable document. The service (server/kb/service.py) drives them against the store."""
