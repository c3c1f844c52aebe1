# Images: one per pipeline step plus the stack's services (images/Dockerfile).
# Included by the root Makefile; each target wraps a script that also runs on its own.

.PHONY: docker-ready
docker-ready: ## Install Docker, docker-compose and debootstrap where missing (root) and start the daemon
	infra/scripts/ensure-docker.sh

.PHONY: lock-images
lock-images: ## Re-export images/locks/*.txt (hashed requirements per image) from the uv locks
	images/lock.sh

.PHONY: build-images
build-images: docker-ready ## Build every step and service image (IMAGES="train postgres": only those), tagged with the git commit and latest
	images/build.sh $(IMAGES)

.PHONY: bench-images
bench-images: docker-ready build-images ## Naive single-stage image vs step images: sizes, cold and warm build times
	images/bench.sh

.PHONY: test-images
test-images: build-images ## Build the images, then test them with real containers
	$(UV) run pytest tests/images $(PYTEST_ARGS)

.PHONY: save-images
save-images: build-images ## One archive of the images a worker on another host runs (dist/ct-images-<commit>.tar), for docker load there
	images/save.sh
