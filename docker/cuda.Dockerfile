# GPU training: `docker build -f docker/cuda.Dockerfile -t equirobot:cuda .`, then
# `docker run --gpus all --rm -v $PWD/runs:/equirobot/runs equirobot:cuda equirobot train scale=gpu ...`
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3.11-dev gfortran gcc g++ \
        make libegl1 libgl1 libgles2 \
    && rm -rf /var/lib/apt/lists/*

ENV MUJOCO_GL=egl PIP_NO_CACHE_DIR=1 PATH=/opt/venv/bin:$PATH
RUN python3.11 -m venv /opt/venv
WORKDIR /equirobot
COPY . .
# the CUDA build of the pinned torch release
RUN pip install --index-url https://download.pytorch.org/whl/cu128 torch==2.13.0 \
    && pip install -e .
CMD ["equirobot", "--help"]
