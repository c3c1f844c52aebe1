# CI's own checks (.github/workflows/ci.yml runs them in its lint job).
# Included by the root Makefile. The linters come from PyPI wheels that carry
# their binaries (dev group of pyproject.toml), so nothing is downloaded here.

.PHONY: ci-lint
ci-lint: install ## hadolint on every Dockerfile, actionlint on the workflows, pylint on CI's scripts
	$(UV) run hadolint --config .hadolint.yaml $$(git ls-files '*Dockerfile*')
	$(UV) run actionlint
	$(UV) run pylint .github/scripts
