"""The RAG search engine: load, chunk, embed, index (FAISS + BM25), fuse, rerank, answer, evaluate.

    from scratchlab.retrieval.index import DocumentIndex
    idx = DocumentIndex.open_or_create("my-index")
    idx.ingest(["docs/"])                                  # incremental: only new/changed files embed
    for hit in idx.search("what is QLoRA?", k=5):          # modes: hybrid (default), dense, bm25
        print(hit.doc_id, hit.line, hit.start, hit.end, hit.text[:80])

Modules (one concern each): `loaders` (files -> documents), `structure` (markdown/HTML headings,
code fences, tables), `chunking` (token-aware, structure-aware chunks with character spans and
context headers), `minilm` (the shipped model), `embeddings` (encoder choice; PyTorch
sentence-transformers), `onnx_embed` (ONNX Runtime int8 MiniLM), `dense` (FAISS flat/HNSW),
`lexical` (BM25 via bm25s), `store` (SQLite chunk table), `index` (the index folder), `ingest`
(incremental, checkpointed ingest), `search` (dense/BM25/hybrid search), `fusion` (RRF), `rerank`
(cross-encoder, MaxSim, LLM log-prob), `rerank_train` (cross-encoder fine-tuning), `hyde`
(hypothetical document embeddings), `answer` (grounded prompt with citations), `eval` (Recall@k,
MRR, nDCG). Nothing here imports LangChain or
the agent; the tools layer adapts it.
"""
