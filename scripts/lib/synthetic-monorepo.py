#!/usr/bin/env python3
"""Writes a synthetic image-manager monorepo for benchmarks.

    scripts/lib/synthetic-monorepo.py DIR [--images 1000] [--bases 20] [--tags 10]

The layout (defaults):
- 20 base images `images/base/base-NN/` in a chain: base-00 is built FROM the external
  `debian:bookworm-slim`, base-NN FROM base-(NN-1) through `resolve_base_image`.
- 980 application images `images/group-GG/app-NNNN/` (20 per group folder), each built FROM
  one of the base images (spread round-robin) through `resolve_base_image`.
- Every image: 10 semver tags 1.0.0 ... 1.4.1 (so `1`, `1.0` ... `1.4` aliases exist) and two
  variants: `dev` (`-dev`, template in the variant folder `dev/Dockerfile.jinja2`) and
  `slim` (`-slim`, template `Dockerfile.slim.jinja2`). 1,000 images x 30 tags = 30,000 tags.
- `versions` and `variables` at image, tag and variant level, all used by the templates; a
  `test.yml.jinja2` per image; includes from the project's `templates/` folder.
- rootfs at two levels: the group folder's `rootfs/` (2 files) and each image's own
  `rootfs/` (2 files and a symlink, one file executable).

The output is deterministic. DIR must be empty, missing, or a previous output of this script
(recognised by its marker file), which is replaced.
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

MARKER = ".synthetic-monorepo"
PER_GROUP = 20
# 1.0.0 1.0.1 1.1.0 ... 1.4.1: ten tags, aliases 1 and 1.0 ... 1.4.
SEMVER_TAGS = [f"1.{minor}.{patch}" for minor in range(5) for patch in range(2)]

PROJECT_SETTINGS = """\
# Settings of a synthetic monorepo written by scripts/lib/synthetic-monorepo.py.
registry:
  url: registry.example.test/synthetic
labels:
  vendor: Synthetic Benchmarks
  url: https://git.example.test/images/-/tree/main/images/%image%
  documentation: https://docs.example.test/images/%image%/%tag%
  licenses: MIT
platforms: [linux/amd64, linux/arm64]
"""

# Project templates/ folder: included by every image's templates.
LABELS = """\
LABEL org.opencontainers.image.title="{{ image.name }}" \\
      org.opencontainers.image.description="{{ image.description or image.name }}" \\
      org.opencontainers.image.version="{{ tag.name }}"{% for key, value in variables.labels | dictsort %} \\
      {{ key }}="{{ value }}"{% endfor %}
"""

DEV_TOOLS = """\
USER root
RUN apt-get update \\
 && apt-get install -y --no-install-recommends{% for package in variables.dev_packages %} {{ package }}{% endfor %} \\
 && rm -rf /var/lib/apt/lists/*
ENV DEBUG=1 \\
    TOOLCHAIN_VERSION={{ "toolchain" | resolve_version }}
"""

TEST_COMMON = """\
  - name: os release
    path: /etc/os-release
    shouldExist: true
  - name: group motd from the group rootfs
    path: /etc/{{ variables.group }}/motd
    shouldExist: true
{%- for path in variables.own_files %}
  - name: {{ path }} from the image rootfs
    path: {{ path }}
    shouldExist: true
{%- endfor %}
"""

BASE_DOCKERFILE = """\
# {{{{ image.name }}}} {{{{ tag.name }}}}: layer {{{{ variables.layer }}}} of the synthetic base chain.
FROM {from_expression}
{{% include "labels.jinja2" -%}}
ENV LANG=C.UTF-8 \\
    BASE_LAYER={{{{ variables.layer }}}} \\
    BASE_VERSION={{{{ tag.versions.base }}}}
RUN apt-get update \\
 && apt-get install -y --no-install-recommends{{% for package in variables.packages %}} {{{{ package }}}}{{% endfor %}} \\
 && rm -rf /var/lib/apt/lists/*
{{% if variables.layer | string == "0" -%}}
RUN groupadd --gid {{{{ variables.uid }}}} {{{{ variables.user }}}} \\
 && useradd --uid {{{{ variables.uid }}}} --gid {{{{ variables.uid }}}} --create-home {{{{ variables.user }}}}
{{% endif -%}}
RUN echo "{{{{ image.name }}}}:{{{{ tag.name }}}} build {{{{ variables.build }}}}" >> /etc/base-layers
HEALTHCHECK CMD ["/usr/local/bin/healthcheck"]
CMD ["/bin/sh"]
"""

APP_DOCKERFILE = """\
# {{{{ image.name }}}} {{{{ tag.name }}}}: a synthetic application on {base}.
FROM {{{{ "{base}" | resolve_base_image("1.4") }}}} AS build
ARG APP_VERSION={{{{ tag.versions.app }}}}
WORKDIR /src
RUN echo "{{{{ image.name }}}} $APP_VERSION ({{{{ variables.channel }}}})" > VERSION

FROM {{{{ "{base}" | resolve_base_image("1.4") }}}}
{{% include "labels.jinja2" -%}}
ENV APP_VERSION={{{{ tag.versions.app }}}} \\
    RUNTIME_VERSION={{{{ "runtime" | resolve_version }}}}{{% for key, value in variables.env | dictsort %}} \\
    {{{{ key }}}}={{{{ value }}}}{{% endfor %}}
RUN apt-get update \\
 && apt-get install -y --no-install-recommends{{% for package in variables.packages %}} {{{{ package }}}}{{% endfor %}} \\
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/VERSION /srv/{{{{ image.name }}}}/VERSION
EXPOSE {{{{ variables.port }}}}
USER {{{{ variables.uid }}}}
CMD ["/usr/local/bin/entrypoint"]
"""

DEV_DOCKERFILE = """\
# {{ image.name }} {{ tag.name }}: the -dev variant, {{ base_image }} plus build tools.
FROM {{ base_image }}
{% include "dev-tools.jinja2" -%}
{% for path in variables.dev_dirs -%}
RUN mkdir -p {{ path }} && chown {{ variables.uid }} {{ path }}
{% endfor -%}
USER {{ variables.uid }}
"""

SLIM_DOCKERFILE = """\
# {{{{ image.name }}}} {{{{ tag.name }}}}: the -slim variant, copied onto the slim base.
FROM {{{{ base_image }}}} AS full

FROM {slim_from}
{{% include "labels.jinja2" -%}}
{{% for path in variables.slim_keep -%}}
COPY --from=full {{{{ path }}}} {{{{ path }}}}
{{% endfor -%}}
ENV SLIM=1 \\
    {version_env}={{{{ tag.versions.{version_key} }}}}
USER {{{{ variables.uid }}}}
"""

TEST_TEMPLATE = """\
schemaVersion: 2.0.0
metadataTest:
  envVars:
    - key: {version_env}
      value: "{{{{ tag.versions.{version_key} }}}}"
  user: "{{{{ variables.uid }}}}"
{{%- if variant and variant.name == "dev" %}}
commandTests:
  - name: the toolchain is installed
    command: sh
    args: ["-c", "command -v make"]
    exitCode: 0
{{%- endif %}}
fileExistenceTests:
{{% include "test-common.jinja2" -%}}
"""


def write(path: Path, text: str, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mode is not None:
        path.chmod(mode)


def symlink(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def yaml_list(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def tags_yaml(version_key: str, image_index: int) -> str:
    lines = ["tags:"]
    for number, tag in enumerate(SEMVER_TAGS):
        channel = "stable" if number % 2 else "candidate"
        lines.append(f"  - name: {tag}")
        lines.append(f"    versions: {{{version_key}: {tag}}}")
        lines.append(f"    variables: {{build: {image_index * 100 + number}, channel: {channel}}}")
    return "\n".join(lines) + "\n"


def variants_yaml(dev_packages: list[str]) -> str:
    return f"""\
variants:
  - name: dev
    tag_suffix: -dev
    versions:
      toolchain: 13.2.0
    variables:
      dev_packages: {yaml_list(dev_packages)}
      dev_dirs: [/workspace, /cache]
  - name: slim
    tag_suffix: -slim
    variables:
      slim_keep: [/usr/local/bin, /etc/ssl/certs]
"""


def write_group_rootfs(group_dir: Path, group: str) -> None:
    write(group_dir / "rootfs" / "etc" / group / "motd", f"Built by the {group} team.\n")
    write(
        group_dir / "rootfs" / "etc" / "apt" / "apt.conf.d" / f"90-{group}",
        'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n',
    )


def write_base(root: Path, index: int) -> None:
    name = f"base-{index:02d}"
    folder = root / "images" / "base" / name
    if index == 0:
        from_expression = "debian:{{ versions.debian }}-slim"
    else:
        # Alternate between a tag and an alias so both resolution paths are exercised.
        parent_tag = "1.4.1" if index % 2 else "1.4"
        from_expression = f'{{{{ "base-{index - 1:02d}" | resolve_base_image("{parent_tag}") }}}}'
    write(
        folder / "image.yml",
        f"""\
# {name}: layer {index} of the synthetic base chain.
is_base_image: true
description: Synthetic base layer {index}
licenses: MIT
versions:
  debian: bookworm
  openssl: 3.0.{index}
variables:
  layer: {index}
  user: app
  uid: 1000
  group: base
  packages: [ca-certificates, tzdata, curl-{index}]
  labels: {{com.example.layer: "{index}", com.example.team: platform}}
  own_files: [/etc/{name}/release, /usr/local/bin/healthcheck]
"""
        + tags_yaml("base", index)
        + variants_yaml(["build-essential", "git", f"gdb-{index}"]),
    )
    write(folder / "Dockerfile.jinja2", BASE_DOCKERFILE.format(from_expression=from_expression))
    write(folder / "dev" / "Dockerfile.jinja2", DEV_DOCKERFILE)
    slim_from = 'debian:{{ versions.debian }}-slim' if index == 0 else (
        f'{{{{ "base-{index - 1:02d}" | resolve_base_image("1.4-slim") }}}}'
    )
    write(folder / "Dockerfile.slim.jinja2", SLIM_DOCKERFILE.format(
        slim_from=slim_from, version_env="BASE_VERSION", version_key="base"))
    write(
        folder / "test.yml.jinja2",
        TEST_TEMPLATE.format(version_env="BASE_VERSION", version_key="base"),
    )
    write(folder / "rootfs" / "etc" / name / "release", f"{name}\n")
    write(
        folder / "rootfs" / "usr" / "local" / "bin" / f"healthcheck-{index:02d}",
        "#!/bin/sh\ntest -r /etc/os-release\n",
        0o755,
    )
    symlink(folder / "rootfs" / "usr" / "local" / "bin" / "healthcheck", f"healthcheck-{index:02d}")


def write_app(root: Path, index: int, bases: int, group: str) -> None:
    name = f"app-{index:04d}"
    folder = root / "images" / group / name
    base = f"base-{index % bases:02d}"
    write(
        folder / "image.yml",
        f"""\
# {name}: a synthetic application image on {base}.
name: {name}
description: Synthetic application {index}
licenses: Apache-2.0
versions:
  runtime: 3.{10 + index % 4}
  libpq: 15.{index % 10}
variables:
  uid: 1000
  port: {8000 + index}
  group: {group}
  packages: [libpq5, libssl3, app-{index}-deps]
  env: {{APP_HOME: /srv/{name}, APP_NAME: {name}, LOG_LEVEL: info}}
  labels: {{com.example.app: {name}, com.example.group: {group}}}
  own_files: [/etc/{name}/config.yml, /usr/local/bin/entrypoint]
"""
        + tags_yaml("app", index)
        + variants_yaml(["build-essential", "git", f"libpq-dev-{index}"]),
    )
    write(folder / "Dockerfile.jinja2", APP_DOCKERFILE.format(base=base))
    write(folder / "dev" / "Dockerfile.jinja2", DEV_DOCKERFILE)
    slim_from = f'{{{{ "{base}" | resolve_base_image("1.4-slim") }}}}'
    write(folder / "Dockerfile.slim.jinja2", SLIM_DOCKERFILE.format(
        slim_from=slim_from, version_env="APP_VERSION", version_key="app"))
    write(
        folder / "test.yml.jinja2",
        TEST_TEMPLATE.format(version_env="APP_VERSION", version_key="app"),
    )
    write(
        folder / "rootfs" / "etc" / name / "config.yml",
        f"name: {name}\nport: {8000 + index}\nlog_level: info\n",
    )
    write(
        folder / "rootfs" / "usr" / "local" / "bin" / name,
        f'#!/bin/sh\nexec /srv/{name}/run "$@"\n',
        0o755,
    )
    symlink(folder / "rootfs" / "usr" / "local" / "bin" / "entrypoint", name)


def prepare(root: Path) -> None:
    if root.exists() and any(root.iterdir()):
        if not (root / MARKER).is_file():
            sys.exit(f"synthetic-monorepo: {root} is not empty and was not written by this script")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)


def generate(root: Path, images: int, bases: int) -> dict[str, int]:
    prepare(root)
    write(root / MARKER, "written by scripts/lib/synthetic-monorepo.py; safe to delete\n")
    write(root / ".image-manager.yml", PROJECT_SETTINGS)
    write(root / "templates" / "labels.jinja2", LABELS)
    write(root / "templates" / "dev-tools.jinja2", DEV_TOOLS)
    write(root / "templates" / "test-common.jinja2", TEST_COMMON)
    write_group_rootfs(root / "images" / "base", "base")
    for index in range(bases):
        write_base(root, index)
    groups = set()
    for index in range(images - bases):
        group = f"group-{index // PER_GROUP:02d}"
        if group not in groups:
            groups.add(group)
            write_group_rootfs(root / "images" / group, group)
        write_app(root, index, bases, group)
    return {
        "images": images,
        "bases": bases,
        "groups": len(groups) + 1,
        "tags": images * len(SEMVER_TAGS) * 3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="where to write the project")
    parser.add_argument("--images", type=int, default=1000, help="images in all (default 1000)")
    parser.add_argument("--bases", type=int, default=20, help="base images in the chain (default 20)")
    args = parser.parse_args()
    if not 1 <= args.bases < args.images:
        parser.error("need 1 <= --bases < --images")
    counts = generate(args.dir, args.images, args.bases)
    print(
        f"wrote {counts['images']} images ({counts['bases']} bases in a chain) in "
        f"{counts['groups']} group folders, {counts['tags']} tags expected, to {args.dir}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    os.umask(0o022)
    main()
