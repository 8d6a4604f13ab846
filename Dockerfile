# chainserve as a Lambda container image (template-image.yaml), with the Lambda Web Adapter
# 1.0.0 as an extension. The same image runs anywhere else as a plain web server:
#   docker run -p 8080:8080 -e HOST=0.0.0.0 -e AWS_REGION=us-east-1 chainserve
FROM public.ecr.aws/docker/library/python:3.12-slim

COPY --from=public.ecr.aws/awsguru/aws-lambda-adapter:1.0.0 /lambda-adapter /opt/extensions/lambda-adapter

ENV PORT=8080 \
    AWS_LWA_INVOKE_MODE=response_stream \
    AWS_LWA_READINESS_CHECK_PATH=/healthz \
    CHAINSERVE_CHAINS_DIR=chains \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /var/task
# The locked dependencies first, so code changes reuse this layer.
COPY requirements.lock ./
RUN pip install --no-cache-dir --only-binary=:all: --no-deps -r requirements.lock \
    && python -m compileall -q /usr/local/lib/python3.12/site-packages
COPY run.sh ./
COPY service/ service/
COPY chains/ chains/
RUN python -m compileall -q service && useradd --system --no-create-home chainserve
USER chainserve

CMD ["./run.sh"]
