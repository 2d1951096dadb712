"""spark-submit entry: session notes + knowledge articles -> feature_store.document_chunks -> the document index.

spark-submit jobs/embed_documents.py --run-date YYYY-MM-DD [--conf-file conf/local.yaml] (--help: the step's options)
"""

from athlete_platform.steps import job_main

if __name__ == "__main__":
    job_main("embed_documents")
