"""Session notes and knowledge articles as embeddings (DESIGN.md section 12).

`chunking` cuts notes and markdown articles into bounded chunks (pure), `embedder` turns texts
into vectors (a model shipped inside a wheel, behind the `Embedder` protocol), `pipeline` is the
`embed-documents` step (silver.sessions.notes + knowledge/*.md -> feature_store.document_chunks,
incremental), and `index` is the LanceDB index built from that table with the hybrid search
the assistant calls.
"""
