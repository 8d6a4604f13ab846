"""Contender (b): LangServe's ``add_routes`` on the identical runnable chainserve builds.

The chain file is loaded and turned into ``prompt | ChatBedrockConverse | StrOutputParser`` by
chainserve's own loader and builder, with the same shared boto3 client settings, so the only
difference from contender (a) is the serving layer. Run: ``uvicorn bench.contenders.langserve_app:app``.
"""

from fastapi import FastAPI
from langserve import add_routes

from bench.contenders.catalog import BENCH_CHAIN
from service.chains.loader import load_file
from service.chains.models import BedrockClients
from service.chains.runnable import build_runnable
from service.settings import Settings

app = FastAPI(title="LangServe (benchmark contender)")
add_routes(
    app,
    build_runnable(load_file(BENCH_CHAIN), BedrockClients(Settings())),
    path="/chains/bench",
)
