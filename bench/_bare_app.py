"""The baseline for the status benchmark: a bare FastAPI JSON endpoint, nothing else."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/json")
async def json_endpoint() -> dict[str, str]:
    return {"hello": "world"}
