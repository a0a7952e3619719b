# flight_fees user-code image: the code server, the run pods and the document server of the
# Kubernetes deployment (docs/DEPLOYMENT.md, deploy/helm/values.yaml).
#   docker build -t registry.example.com/flight-fees:0.1.0 .
FROM python:3.11-slim

# WeasyPrint (invoice and credit-note PDFs) loads pango at run time; DejaVu fonts for the
# documents (the same packages `make install` adds on Debian)
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    FLIGHT_FEES_HOME=/var/lib/flight_fees

WORKDIR /opt/flight_fees
COPY pyproject.toml README.md ./
COPY flight_fees ./flight_fees
# the project with its runtime dependencies (dagster, dagster-postgres, s3fs ...) and the
# Kubernetes run launcher, which every pod that opens the Dagster instance needs
RUN pip install ".[k8s]" \
 && python -c "import weasyprint, dagster_k8s, dagster_postgres, s3fs, flight_fees"

# an unprivileged user; FLIGHT_FEES_HOME is local scratch (shared state lives at
# FLIGHT_FEES_STORAGE_URL), DAGSTER_HOME receives the chart's instance ConfigMap
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin flightfees \
 && mkdir -p "$DAGSTER_HOME" "$FLIGHT_FEES_HOME" \
 && chown flightfees "$DAGSTER_HOME" "$FLIGHT_FEES_HOME"
USER 10001

EXPOSE 3030 8090
# the chart overrides the command of each pod (code server, run worker); run alone, the image
# serves the code location
CMD ["dagster", "api", "grpc", "--module-name", "flight_fees.definitions", "--host", "0.0.0.0", "--port", "3030"]
