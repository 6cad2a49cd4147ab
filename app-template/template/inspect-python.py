# Run by the image's own python3 inside the container, by jupyter-session.sh (python3 -c
# "$(cat inspect-python.py)" MODE ...), so that one container start answers every question.
# Copied into the app as it is. It prints plain lines for bash to read and never writes a file.
#
#   probe              what this Python offers JupyterLab, as name=value lines
#   environments DIR…  which of the researcher's environments can give a kernel here, as
#                      tab-separated lines: env|skip|carried, the directory, its kind, details

# First of all, the current directory off sys.path (`python3 -c` puts it first): the probe runs
# wherever the job or staff happen to be (a batch job's submission directory, a shared project
# directory), and a json.py or jupyter_server/ planted there must not answer for the image: what it
# printed would become the kernel's command line. Not with -I, which would also drop PYTHONPATH,
# and with it the overlay being probed. Where PYTHONSAFEPATH is set, nothing was put there.
import sys

if not getattr(sys.flags, "safe_path", False):
    del sys.path[0]

import importlib  # noqa: E402 (after the line above, on purpose)
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sysconfig  # noqa: E402


def version_of(name):
    """The installed version of NAME, from its metadata where it has one (reading a file, where an
    import of jupyter_server or jupyterlab takes most of a second: the probe is the first session's
    wait), else by importing it; "" where it is not there."""
    try:
        from importlib import metadata

        return metadata.version(name)
    except Exception:
        pass
    try:
        return getattr(importlib.import_module(name), "__version__", "unknown")
    except Exception:
        return ""


def probe():
    print("executable=%s" % sys.executable)
    print("python=%d.%d.%d" % sys.version_info[:3])
    for name in ("jupyter_server", "jupyterlab", "ipykernel", "pip"):
        print("%s=%s" % (name, version_of(name)))
    # Where `pip install --user` puts packages, relative to PYTHONUSERBASE: the package directory's
    # layout for this Python (lib/python3.X/site-packages for CPython on Linux).
    scheme = "%s_user" % os.name
    user_site = sysconfig.get_path("purelib", scheme, {"userbase": "/U", "base": "/U"})
    print("user_site=%s" % os.path.relpath(user_site, "/U"))


# The interpreter a venv was made from (pyvenv.cfg: "executable", or "home" and "version"), to
# name it when it is missing here.
def venv_home(env):
    keys = {}
    try:
        with open(os.path.join(env, "pyvenv.cfg"), encoding="utf-8") as cfg:
            for line in cfg:
                key, _, value = line.partition("=")
                keys[key.strip()] = value.strip()
    except OSError:
        return ""
    if keys.get("executable"):
        return keys["executable"]
    if keys.get("home") and keys.get("version"):
        return os.path.join(keys["home"], "python" + ".".join(keys["version"].split(".")[:2]))
    return keys.get("home", "")


def environment(env):
    kind = "conda" if os.path.isdir(os.path.join(env, "conda-meta")) else (
        "venv" if os.path.exists(os.path.join(env, "pyvenv.cfg")) else "environment")
    python = next((p for p in (os.path.join(env, "bin", "python3"), os.path.join(env, "bin", "python"))
                   if os.path.lexists(p)), None)
    if python is None:
        return []
    check = "import sys, importlib.util; print('%d.%d' % sys.version_info[:2], importlib.util.find_spec('ipykernel') is not None)"
    try:
        run = subprocess.run([python, "-I", "-c", check], capture_output=True, text=True, timeout=60)
        answer = run.stdout.split() if run.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired):
        answer = []
    if len(answer) != 2:
        made_from = venv_home(env) or os.path.realpath(python)
        return [["skip", env, kind, "its Python (%s) does not run in this container" % made_from]]
    version, has_kernel = answer
    lines = [["env", env, kind, python, version]] if has_kernel == "True" else []
    # Kernels the environment carries itself (share/jupyter/kernels, such as R's IRkernel), named
    # after the environment in the launcher. Its own ipykernel spec is the kernel written anyway.
    kernels_dir = os.path.join(env, "share", "jupyter", "kernels")
    for name in sorted(os.listdir(kernels_dir)) if os.path.isdir(kernels_dir) else []:
        try:
            with open(os.path.join(kernels_dir, name, "kernel.json"), encoding="utf-8") as f:
                spec = json.load(f)
        except (OSError, ValueError):
            continue
        if name in ("python3", "python") and "ipykernel" in " ".join(spec.get("argv", [])):
            continue
        spec["display_name"] = "%s (%s: %s)" % (spec.get("display_name", name), kind, os.path.basename(env))
        lines.append(["carried", env, kind, name, os.path.join(kernels_dir, name),
                      json.dumps(spec, separators=(",", ":"))])
    return lines or [["skip", env, kind, "it has no ipykernel (install ipykernel into it to get a kernel)"]]


def environments(dirs):
    for env in dirs:
        for line in environment(env):
            print("\t".join(part.replace("\t", " ").replace("\n", " ") for part in line))


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "probe"
    if mode == "environments":
        environments(sys.argv[2:])
    else:
        probe()
