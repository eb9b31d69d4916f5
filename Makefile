# Everything runs inside .venv, which these targets create on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := demo_output

.PHONY: install dev demo test test-torch bench bench-layers docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files so that a second `make` reinstalls only when pyproject.toml changed.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The tests start a dask cluster, so they need the distributed extra too.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,distributed]'
	touch $(VENV)/.installed $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench,distributed]'
	touch $(VENV)/.installed $(VENV)/.installed-test $@

install: $(VENV)/.installed

dev: $(VENV)/.installed-test

# compress writes into its own folder: its camera_maps.png and camera_reconstruction.png
# (lossy) would otherwise replace the transform's. Its --sweep prints the BD-rates of dctconv
# against its zonal curve and Pillow's JPEG, WebP and (where Pillow has it) AVIF.
demo: install
	$(BIN)/dctconv transform sample_images/*.png -o $(DEMO_DIR) --kernels
	$(BIN)/dctconv transform --inverse $(DEMO_DIR)/*_coefficients.npz -o $(DEMO_DIR)
	$(BIN)/dctconv verify $(DEMO_DIR)/camera_coefficients.npz sample_images/camera.png
	$(BIN)/dctconv compress sample_images/camera.png -o $(DEMO_DIR)/compress --sweep
	$(BIN)/dctconv transform --inverse $(DEMO_DIR)/compress/camera_compressed.dctz -o $(DEMO_DIR)/compress/decoded
	$(BIN)/dctconv verify $(DEMO_DIR)/compress/camera_compressed.dctz sample_images/camera.png
	@echo
	@echo "Demo pictures are in $(DEMO_DIR)/: *_maps.png (coefficient maps), kernels_4.png (the 16 kernels),"
	@echo "*_reconstruction.png (forward then inverse: identical pixels)."
	@echo "$(DEMO_DIR)/compress/: camera compressed at quality 75 (camera_compressed.dctz, camera_summary.png),"
	@echo "decoded again into decoded/, and its sweep against JPEG, WebP and AVIF (camera_sweep.png, .json, .csv)."

# Two processes (pytest-xdist): the suite takes about half as long on two cores.
test: dev
	$(BIN)/python -m pytest -n 2

# The PyTorch tests (skipped by `make test`, where torch is not installed): the CPU build of
# torch 2.13.0 and torch-dct, then the tests that use them.
$(VENV)/.installed-torch: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,torch,distributed]'
	touch $(VENV)/.installed $(VENV)/.installed-test $@

test-torch: $(VENV)/.installed-torch
	$(BIN)/python -m pytest -n 2 tests/test_torch.py tests/test_layers_docs.py

# Speed of the transform against scipy and x.copy(), then the command line end to end, then
# batches of 1,000 small files (--jobs 2 and a local dask cluster).
# Results (CSV, tables, plot) go to benchmarks/results/.
bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/bench_transform.py
	$(BIN)/python benchmarks/bench_cli.py --only startup memory profile jobs
	$(BIN)/python benchmarks/bench_cli.py --only large --out benchmarks/results/large
	$(BIN)/python benchmarks/bench_faults.py
	$(BIN)/python benchmarks/bench_codec.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_science.py

# The transform as a PyTorch layer against conv2d and torch-dct, and JPEG coefficient reading
# (needs the torch extra, as `make test-torch`). Results to benchmarks/results/bench_layers.md.
bench-layers: $(VENV)/.installed-torch
	$(BIN)/python benchmarks/bench_layers.py

# Regenerates the listings, tables and pictures of README.md and docs/ from real runs of the
# current code (docs/generate.py; benchmark tables from benchmarks/results/). Idempotent.
docs: install
	$(BIN)/python docs/generate.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .hypothesis
