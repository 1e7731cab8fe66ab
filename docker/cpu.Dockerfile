# CPU training and evaluation: `docker build -f docker/cpu.Dockerfile -t equirobot:cpu .`
# then `docker run --rm -v $PWD/runs:/equirobot/runs equirobot:cpu equirobot train task=stack_d1 ...`
FROM python:3.11-slim-bookworm

# gfortran: escnn's py3nj compiles Fortran; libegl/libgl: MuJoCo renders headless through EGL (Mesa)
RUN apt-get update \
    && apt-get install -y --no-install-recommends gfortran gcc g++ make libegl1 libgl1 libgles2 \
    && rm -rf /var/lib/apt/lists/*

ENV MUJOCO_GL=egl PIP_NO_CACHE_DIR=1
WORKDIR /equirobot
COPY . .
# torch 2.13.0's CPU wheel, as pyproject pins it
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install -e .
ENTRYPOINT []
CMD ["equirobot", "--help"]
