# One-command entry points; each creates .venv and installs requirements.txt on first use.
PYTHON ?= python3
# Python writes the bytecode of what it imports as it goes, the first command once: with PYTHONDONTWRITEBYTECODE
# (set on some machines) every command would compile azure-ai-ml again in memory, 3.5 s instead of 1.3 s.
unexport PYTHONDONTWRITEBYTECODE
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup lock test lint bench bench-deploy bench-serving bench-train bench-size model clean

setup: $(STAMP)

UV_VERSION := $(shell sed -n 's/^uv==//p' requirements.txt)

# uv (pinned in requirements.txt) installs the rest in seconds; pip, about a minute, when uv cannot be had.
# requirements.lock names every package requirements.txt brings in: uv fetches them all at once instead of level by
# level (1 s instead of 5). The largest packages are compiled on every core here (5 s): on first import, one file
# at a time, the first command would take 10 s instead of 3. Their own tests are left out.
COMPILED_PACKAGES := azure sklearn pandas numpy scipy
$(STAMP): requirements.txt requirements.lock
	@echo "Creating $(VENV) and installing requirements.txt with uv $(UV_VERSION) (seconds; pip if uv fails)..."
	$(PYTHON) -m venv --without-pip $(VENV)
	@if $(PYTHON) -m pip --python $(BIN)/python install --quiet --disable-pip-version-check --progress-bar off \
		"uv==$(UV_VERSION)" && $(BIN)/uv pip install --python $(BIN)/python -r requirements.txt -r requirements.lock; \
		then :; else echo "uv could not install requirements.txt: installing with pip instead (about a minute)..."; \
		$(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --disable-pip-version-check --progress-bar off \
		-r requirements.txt || exit 1; fi
	@echo "Compiling the largest packages' bytecode on every core..."
	@cd "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" && \
		$(abspath $(BIN))/python -m compileall -q -j 0 -x '/tests?/' $(COMPILED_PACKAGES) > /dev/null || true
	touch $(STAMP)
	@echo "Installed."

# requirements.lock after a change to requirements.txt
lock: setup
	$(BIN)/uv pip compile --python-version 3.11 --python-platform linux --custom-compile-command "make lock" \
		requirements.txt -o requirements.lock

# The suite keeps both cores busy (CPU-bound: docs/development.md): 3 workers took as long as 4 (511 s against 530 s)
# with fewer timing tests near their limits; a file's tests stay together (its module-scoped endpoint, and tests that
# build on each other). PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 3
test: setup
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

# ruff, then mypy (strict on common/ and commands/: pyproject.toml)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/startup.py

# Time to a local deployment's first 200 (environment built, then cached) and to a passed preflight (about 30 s)
bench-deploy: setup
	$(BIN)/python benchmarks/deploy.py

# Serving speed and the front door's memory (about 9 minutes; wrk when installed: apt-get install -y wrk)
bench-serving: setup
	$(BIN)/python benchmarks/serving.py

# train_model.py's time on a quiet and a busy machine, one OpenMP thread against one per core (about 2 minutes)
bench-train: setup
	$(BIN)/python benchmarks/training.py

bench-size: setup
	$(BIN)/python benchmarks/size.py

model: setup
	$(BIN)/python train_model.py

clean:
	rm -rf outputs .pytest_cache .ruff_cache

# The local demo: no Azure account, no Docker. Endpoint state lives in ~/.azureml-local ($AZUREML_LOCAL_HOME).
DEMO_ENDPOINT := diabetes-classify
DEMO_DEPLOY := $(BIN)/python create_online_deployment.py --local --endpoint_name $(DEMO_ENDPOINT) \
	--model_path azureml:diabetes-predict@latest --environment diabetes-classify --score_path 09-deploy-model \
	--score_script score.py --instance_type Standard_DS3_v2 --instance_count 1

.PHONY: demo demo-rollout demo-shadow demo-clean clean-local
demo: setup
	$(BIN)/python train_model.py --register --local
	$(BIN)/python create_online_endpoint.py --local --endpoint_name $(DEMO_ENDPOINT) \
		--description "Diabetes classification endpoint" --auth_mode key --public_network enabled
	$(DEMO_DEPLOY) --deployment_name blue --traffic_allocation 100
	$(BIN)/python invoke_online_endpoint.py --local --endpoint_name $(DEMO_ENDPOINT) \
		--request_file 09-deploy-model/sample-request.json
	$(DEMO_DEPLOY) --deployment_name green --traffic_allocation 10
	$(BIN)/python manage_online_endpoint.py probe --local --endpoint_name $(DEMO_ENDPOINT) --requests 200

# Safe rollout on a local endpoint of its own: a good green rolled out to 100% step by step, rolled back by hand, then
# a broken green (demo/broken-release/score.py fails every request) rolled back automatically at its first step.
ROLLOUT_ENDPOINT := diabetes-rollout
ROLLOUT_DEPLOY := $(subst --endpoint_name $(DEMO_ENDPOINT),--endpoint_name $(ROLLOUT_ENDPOINT),$(DEMO_DEPLOY))
MANAGE_ROLLOUT := $(BIN)/python manage_online_endpoint.py
ROLLOUT := $(MANAGE_ROLLOUT) rollout --local --endpoint_name $(ROLLOUT_ENDPOINT) --deployment_name green \
	--steps 10 50 100 --bake_seconds 2 --max_error_percent 1 --max_p95_ms 500 --probe_requests 400

demo-rollout: setup
	$(BIN)/python train_model.py --register --local
	$(BIN)/python create_online_endpoint.py --local --endpoint_name $(ROLLOUT_ENDPOINT) --auth_mode key
	$(ROLLOUT_DEPLOY) --deployment_name blue --traffic_allocation 100
	$(ROLLOUT_DEPLOY) --deployment_name green --traffic_allocation 0
	@echo "== 1. a good green, rolled out step by step"
	$(ROLLOUT)
	$(MANAGE_ROLLOUT) rollback --local --endpoint_name $(ROLLOUT_ENDPOINT)
	@echo "== 2. a broken green (every request fails): rolled back automatically at its first step"
	$(subst --score_path 09-deploy-model,--score_path demo/broken-release,$(ROLLOUT_DEPLOY)) --deployment_name green \
		--traffic_allocation 0
	@echo "== expected next: the rollout's 'error:' line and exit 9, the split restored: the automatic rollback at work"
	$(ROLLOUT) || test $$? -eq 9
	$(MANAGE_ROLLOUT) show --local --endpoint_name $(ROLLOUT_ENDPOINT)
	@echo "== demo-rollout done: blue serves 100%; the broken green holds no traffic (make demo-clean removes it all)"

# Shadow comparison on a local endpoint of its own (under a minute once set up): blue, and a green trained on 300
# rows instead of 5000, mirrored at 50%; 200 requests of 100 rows each (demo/shadow-requests.json); compare, drift
# with its plot, then a rollout that lets green through only if it disagrees with blue on at most 5% of the rows.
SHADOW_ENDPOINT := diabetes-shadow
SHADOW_DEPLOY := $(subst --endpoint_name $(DEMO_ENDPOINT),--endpoint_name $(SHADOW_ENDPOINT),$(DEMO_DEPLOY)) \
	--data_collection model_inputs,model_outputs
MANAGE_SHADOW := $(BIN)/python manage_online_endpoint.py
SHADOW_FLAGS := --local --endpoint_name $(SHADOW_ENDPOINT)

demo-shadow: setup
	$(BIN)/python train_model.py --register --local
	$(BIN)/python create_online_endpoint.py $(SHADOW_FLAGS) --auth_mode key
	$(SHADOW_DEPLOY) --deployment_name blue --traffic_allocation 100
	$(BIN)/python train_model.py --register --local --rows 300 --output_dir outputs/diabetes-model-green
	$(SHADOW_DEPLOY) --deployment_name green --traffic_allocation 0
	$(MANAGE_SHADOW) traffic $(SHADOW_FLAGS) --mirror green=50
	$(MANAGE_SHADOW) probe $(SHADOW_FLAGS) --requests 200 --request_file demo/shadow-requests.json
	$(MANAGE_SHADOW) compare $(SHADOW_FLAGS) --deployment_name green
	$(MANAGE_SHADOW) drift $(SHADOW_FLAGS) --deployment_name blue --plot outputs/drift-blue.png
	@echo "== a rollout gated on green's disagreement with blue (at most 5% of rows): green, trained on 300 rows, is"
	@echo "   expected to cross it, so the rollout stops before its first live step ('error:' line, exit 9)"
	$(MANAGE_SHADOW) rollout $(SHADOW_FLAGS) --deployment_name green --steps 50 100 --bake_seconds 2 \
		--probe_requests 100 --request_file demo/shadow-requests.json --max_disagreement_percent 5 || test $$? -eq 9
	$(MANAGE_SHADOW) show $(SHADOW_FLAGS)
	@echo "== demo-shadow done: blue serves 100%, green stayed a shadow (make demo-clean removes it all)"

# Every local endpoint the demos and the README's examples create (tests/test_readme.py keeps the list complete)
README_ENDPOINTS := $(DEMO_ENDPOINT) $(ROLLOUT_ENDPOINT) $(SHADOW_ENDPOINT) diabetes-safe diabetes-local my-endpoint
LOCAL_HOME := $(or $(AZUREML_LOCAL_HOME),$(HOME)/.azureml-local)
DELETE_LOCAL = test ! -f "$(LOCAL_HOME)/endpoints/$$endpoint/endpoint.json" || \
	$(BIN)/python manage_online_endpoint.py delete --local --endpoint_name "$$endpoint" --yes

demo-clean: setup
	@for endpoint in $(README_ENDPOINTS); do $(DELETE_LOCAL) || exit 1; done

# Everything the local target keeps on disk (models, environments, the deployments' virtual environments), after
# deleting every local endpoint it holds, so that no process is left running
clean-local: setup
	@for file in "$(LOCAL_HOME)"/endpoints/*/endpoint.json; do test -f "$$file" || continue; \
		endpoint=$$(basename "$$(dirname "$$file")"); $(DELETE_LOCAL) || exit 1; done
	rm -rf "$(LOCAL_HOME)"
