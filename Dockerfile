# Nova Pixel image for KubeRay (k8s/rayservice.yaml): Ray 2.60.0 on Python 3.11 with the
# project installed, so Serve imports deployments.app:* without runtime_env downloads.
# The Ray version must equal pyproject.toml's pin and the RayService's rayVersion.
#   docker build -t registry.example.com/nova-pixel:0.1.0 .
FROM rayproject/ray:2.60.0-py311-cpu

# .dockerignore lets only pyproject.toml and the Python packages into the build context.
COPY --chown=ray:users . /tmp/nova
# ray==2.60.0 is already in the base image; pip keeps it and adds the rest (the ray[serve]
# extras with the HAProxy binary, asyncpg, redis, ...). Installed as a regular package, the
# code lives in site-packages only, whatever directory Ray starts a worker in. The import
# fails the build if a dependency is missing.
RUN pip install --no-cache-dir /tmp/nova \
    && rm -rf /tmp/nova \
    && python -c "import deployments.app"
