# The README's two commands: `make demo` (main job on the bundled toy data) and `make test`.
# Both first set up .venv with the pinned OpenMMLab stack (fast when it is already there).
PY := .venv/bin/python
DEMO_CFG := configs/detection/toy/retinanet_convmlp_s_fpn_toy.py
DEMO_DIR := work_dirs/toy_retinanet_convmlp_s
SEG_ITERS := 1200
# Extra flags for every tools/train.py below, e.g. `make demo TRAIN_FLAGS=--amp` to train in bf16 on a CPU
# with avx512_bf16 or AMX (docs/performance.md, Fast inference and reduced precision). fp32 by default: the
# expected ranges (README, docs/toy_results.md) were measured in fp32, over seeds and CPUs.
TRAIN_FLAGS ?=

.PHONY: env demo demo-seg demo-cls test test-matrix
env:
	bash tools/setup_env.sh

# Generate the toy COCO set, train RetinaNet-ConvMLP-S on it (resuming if interrupted; a finished run
# is not trained again), then evaluate and draw the predictions.
demo: env
	$(PY) tools/misc/make_toy_data.py det data/toy_coco
	$(PY) tools/train.py $(DEMO_CFG) --work-dir $(DEMO_DIR) --resume $(TRAIN_FLAGS)
	$(PY) tools/test.py $(DEMO_CFG) $(DEMO_DIR)/epoch_12.pth --work-dir $(DEMO_DIR) \
		--show-dir $(DEMO_DIR)/predictions
	$(PY) tools/analysis_tools/plot_curves.py $(DEMO_DIR)
	@echo "Predictions drawn in $(DEMO_DIR)/predictions/, training curves in $(DEMO_DIR)/curves.png"

# The same for Semantic FPN on the toy segmentation set.
demo-seg: env
	$(PY) tools/misc/make_toy_data.py seg data/toy_ade
	$(PY) tools/train.py configs/segmentation/toy/fpn_convmlp_s_toy.py --work-dir work_dirs/toy_fpn_convmlp_s --resume \
		$(TRAIN_FLAGS)
	$(PY) tools/test.py configs/segmentation/toy/fpn_convmlp_s_toy.py work_dirs/toy_fpn_convmlp_s/iter_$(SEG_ITERS).pth \
		--work-dir work_dirs/toy_fpn_convmlp_s --show-dir work_dirs/toy_fpn_convmlp_s/predictions
	$(PY) tools/analysis_tools/plot_curves.py work_dirs/toy_fpn_convmlp_s

# ConvMLP-S classifier from scratch on the toy classification set, then its test-set accuracy.
demo-cls: env
	$(PY) tools/misc/make_toy_data.py cls data/toy_cls
	$(PY) tools/train.py configs/classification/toy/convmlp_s_toy.py --work-dir work_dirs/toy_convmlp_s_cls --resume \
		$(TRAIN_FLAGS)
	$(PY) tools/test.py configs/classification/toy/convmlp_s_toy.py work_dirs/toy_convmlp_s_cls/epoch_10.pth \
		--work-dir work_dirs/toy_convmlp_s_cls
	$(PY) tools/analysis_tools/plot_curves.py work_dirs/toy_convmlp_s_cls

# One test worker per CPU that nproc counts (pytest-xdist; its `-n auto` counts physical cores where psutil is
# installed: one on a 2-vCPU machine whose vCPUs are SMT siblings; TEST_WORKERS=0 runs the tests in this one
# process), each given a whole test file at a time, so that a file's tests share its module fixtures (session
# ones, the toy sets and trained toy detectors, are made once per worker).
TEST_WORKERS ?= $(shell nproc)
XDIST = -n $(TEST_WORKERS) --dist loadfile
test: env
	$(PY) -m pytest $(XDIST) --junitxml=work_dirs/matrix/pinned.xml

# The other stacks of the test matrix (docs/get_started.md, Tested environments: legacy on Python 3.8, onedl on
# 3.10, newest on 3.13): each is set up by tools/setup_env.sh STACK in .venv-STACK (cached like .venv), then runs
# the tests marked `matrix` (backbone, pretrained and official weights, checkpoint safety, fast path, a few
# iterations of each toy config through our tools and the library's own, one inferencer per task, the libraries'
# analysis tools, the wheel installed on that Python). `make test-matrix STACKS=legacy` runs one.
# DROP_VENVS=1 (CI, in its throw-away clone) removes each stack's venv once its tests pass: each holds 5-7 GB of
# torch and CUDA wheels, and the cache rebuilds it in minutes.
STACKS ?= legacy onedl newest
DROP_VENVS ?= 0
test-matrix:
	@for stack in $(STACKS); do \
		start=$$(date +%s); bash tools/setup_env.sh $$stack && \
		echo "== stack $$stack (set up in $$(( $$(date +%s) - start )) s)" && .venv-$$stack/bin/python -m pytest \
			$(XDIST) -m matrix --junitxml=work_dirs/matrix/$$stack.xml || exit 1; \
		if [ "$(DROP_VENVS)" = 1 ]; then rm -rf .venv-$$stack; fi; \
	done
