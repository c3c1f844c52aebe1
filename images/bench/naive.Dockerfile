# The baseline of `make bench-images`: one stage, one environment with the
# dependencies of every step (the regular xgboost wheel, with its CUDA libraries),
# pip as most tutorials use it. Same base, same pins and same code as the step images.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1
COPY images/locks/naive.txt /tmp/requirements.txt
RUN python3 -m venv /opt/venv \
 && pip install --quiet --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt
COPY pipeline_steps/ /app/pipeline_steps/
ENTRYPOINT ["python", "-m"]
