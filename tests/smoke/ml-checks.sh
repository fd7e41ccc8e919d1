#!/bin/sh
# The compute images' own checks (sourced by compute.sh and compute-macos.sh): the ML
# stack computes, PySpark runs a job on Java, JupyterLab started by carbon-entrypoint
# answers on /api.
set -eu
python -m pip check
python - <<'PY'
import numpy as np, pandas as pd, sklearn, torch, tensorflow as tf, transformers
from sklearn.linear_model import LinearRegression
X = np.arange(20).reshape(-1, 1)
print("sklearn fit", round(float(LinearRegression().fit(X, 3 * X.ravel() + 2).coef_[0]), 6))
x = torch.arange(6.0).reshape(2, 3)
print("torch", torch.__version__, (x @ x.T).tolist())
# torchvision's and torchaudio's compiled operators, as notebooks use them (both images:
# the index's builds in compute, Debian's in compute-macos).
import torchvision, torchaudio
boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
print("torchvision nms", torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist())
wave = torch.sin(torch.arange(1600.0) / 10).unsqueeze(0)
mel = torchaudio.transforms.MelSpectrogram(sample_rate=8000, n_fft=400, n_mels=16)(wave)
print("torchaudio mel", tuple(mel.shape))
print("tf", float(tf.reduce_sum(tf.constant([[1.0, 2.0], [3.0, 4.0]]) @ tf.constant([[1.0], [1.0]]))))
print("transformers", transformers.__version__, "pandas", pd.__version__)
PY
python - <<'PY' 2>/dev/null
from pyspark.sql import SparkSession
s = SparkSession.builder.master("local[1]").getOrCreate()
print("spark", s.range(10).selectExpr("sum(id)").collect()[0][0])
s.stop()
PY
i=0
until curl -fsS http://localhost:8888/api 2>/dev/null | grep -q version; do
    i=$((i + 1)); [ "$i" -lt 120 ] || { echo "FAIL: Jupyter does not answer on /api"; cat /home/carbon/.jupyter.log; exit 1; }
    sleep 1
done
echo "ok: jupyter answers on /api"
echo "ok: ML stack"
