"""The naive peer for ``serve_bench.py``: FastAPI calling a transformers ``pipeline`` per request.

    python benchmarks/serve_naive.py MODEL_DIR PORT [THREADS]

No batching across requests, PyTorch fp32, one pipeline call per HTTP request (sync endpoint, so
FastAPI runs it in its thread pool) — what a first deployment usually looks like.
"""


import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    import torch
    import uvicorn
    from fastapi import FastAPI
    from pydantic import BaseModel
    from transformers import pipeline

    model_dir, port = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    clf = pipeline("text-classification", model=model_dir, tokenizer=model_dir, device=-1)
    app = FastAPI()

    class Req(BaseModel):
        texts: list[str]

    @app.get("/readyz")
    def ready() -> dict[str, bool]:
        return {"ready": True}

    @app.post("/v1/models/{name}/predict")
    def predict(name: str, req: Req) -> dict[str, object]:
        out = clf(req.texts, truncation=True, max_length=128, top_k=None)
        return {"predictions": out}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
