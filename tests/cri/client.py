"""A minimal Kubernetes CRI client for tests/cri.rs, on the Python module scripts/engines.sh
compiles from the CRI api.proto (its directory is the first argument).

    client.py CRI_DIR SOCKET run-pod NAME HANDLER ANNOTATIONS-JSON LOG-DIR [NAMESPACE] -> pod id
    client.py CRI_DIR SOCKET create POD-ID NAME IMAGE POD-JSON [COMMAND-JSON] -> container id
    client.py CRI_DIR SOCKET bench POD-ID IMAGE POD-JSON N PREFIX -> N create+start times (ms)
    client.py CRI_DIR SOCKET start CONTAINER-ID
    client.py CRI_DIR SOCKET remove-pod POD-ID
    client.py CRI_DIR SOCKET remove-all-pods

POD-JSON is the run-pod arguments again ({"name", "annotations", "logDir", "namespace"}), as
CreateContainer wants the pod's config; COMMAND-JSON (a list) replaces the image's
entrypoint. A failed call prints the gRPC status details on stderr and exits 1.
"""

import json
import sys
import time

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
import api_pb2 as cri  # noqa: E402
import api_pb2_grpc as cri_grpc  # noqa: E402


def pod_config(name, annotations, log_dir, namespace="hookhost-test"):
    return cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name=name, uid=name, namespace=namespace, attempt=0),
        hostname="",
        log_directory=log_dir,
        annotations=annotations,
        linux=cri.LinuxPodSandboxConfig(
            security_context=cri.LinuxSandboxSecurityContext(
                namespace_options=cri.NamespaceOption(network=cri.NODE)
            )
        ),
    )


def remove(runtime, container_id):
    """Stops and removes a container that may be exiting by itself: a stop that races its exit
    ("ttrpc: closed") is tried again."""
    for attempt in range(50):
        try:
            runtime.StopContainer(
                cri.StopContainerRequest(container_id=container_id, timeout=0), timeout=120
            )
            runtime.RemoveContainer(cri.RemoveContainerRequest(container_id=container_id), timeout=120)
            return
        except grpc.RpcError:
            if attempt == 49:
                raise
            time.sleep(0.1)


def main():
    _, _, socket, command, *args = sys.argv
    channel = grpc.insecure_channel("unix://" + socket)
    runtime = cri_grpc.RuntimeServiceStub(channel)
    try:
        if command == "run-pod":
            name, handler, annotations, log_dir, *namespace = args
            config = pod_config(name, json.loads(annotations), log_dir, *namespace)
            reply = runtime.RunPodSandbox(
                cri.RunPodSandboxRequest(config=config, runtime_handler=handler), timeout=120
            )
            print(reply.pod_sandbox_id)
        elif command == "create":
            pod_id, name, image, pod, *entrypoint = args
            pod = json.loads(pod)
            entrypoint = json.loads(entrypoint[0]) if entrypoint else []
            reply = runtime.CreateContainer(
                cri.CreateContainerRequest(
                    pod_sandbox_id=pod_id,
                    config=cri.ContainerConfig(
                        metadata=cri.ContainerMetadata(name=name, attempt=0),
                        image=cri.ImageSpec(image=image),
                        command=entrypoint,
                        log_path=name + ".log",
                    ),
                    sandbox_config=pod_config(
                        pod["name"], pod["annotations"], pod["logDir"],
                        pod.get("namespace", "hookhost-test"),
                    ),
                ),
                timeout=120,
            )
            print(reply.container_id)
        elif command == "bench":
            # CreateContainer + StartContainer of N containers in the pod, one after another;
            # prints each pair's time in ms (a JSON list). Each is removed after it is timed.
            pod_id, image, pod, n, prefix = args
            pod = json.loads(pod)
            sandbox = pod_config(
                pod["name"], pod["annotations"], pod["logDir"], pod.get("namespace", "hookhost-test")
            )
            times = []
            for i in range(int(n)):
                started = time.perf_counter()
                created = runtime.CreateContainer(
                    cri.CreateContainerRequest(
                        pod_sandbox_id=pod_id,
                        config=cri.ContainerConfig(
                            metadata=cri.ContainerMetadata(name=f"{prefix}{i}", attempt=0),
                            image=cri.ImageSpec(image=image),
                            command=["true"],
                            log_path=f"{prefix}{i}.log",
                        ),
                        sandbox_config=sandbox,
                    ),
                    timeout=120,
                )
                runtime.StartContainer(
                    cri.StartContainerRequest(container_id=created.container_id), timeout=120
                )
                times.append((time.perf_counter() - started) * 1e3)
                remove(runtime, created.container_id)
            print(json.dumps(times))
        elif command == "start":
            runtime.StartContainer(cri.StartContainerRequest(container_id=args[0]), timeout=120)
        elif command == "remove-pod":
            runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=args[0]), timeout=120)
            runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=args[0]), timeout=120)
        elif command == "remove-all-pods":
            for pod in runtime.ListPodSandbox(cri.ListPodSandboxRequest(), timeout=120).items:
                runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=pod.id), timeout=120)
                runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=pod.id), timeout=120)
        else:
            sys.exit("unknown command " + command)
    except grpc.RpcError as e:
        print(f"{e.code().name}: {e.details()}", file=sys.stderr)
        sys.exit(1)


main()
