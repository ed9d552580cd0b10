"""Grounded chat: sessions in Cosmos DB, retrieval through hybrid search, answers with checked citations.

Modules: ``store`` (sessions and messages in Cosmos DB, one logical partition per tenant and user),
``answer`` (one turn: rewrite → search → prompt → generate → cite, as a stream of events),
``prompt`` (numbered sources, the system prompt, and the filter that keeps only real citations),
``providers`` (extractive, OpenAI/Azure OpenAI, Anthropic behind one interface), ``secrets``
(users' own provider keys: Key Vault in Azure, 0600 files locally). Importing this package imports
none of the Azure SDKs; the Cosmos client is created on first use.
"""
