use std::path::Path;

use super::*;

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    fs_err::create_dir_all(path.parent().unwrap()).unwrap();
    fs_err::write(path, text).unwrap();
}

/// Renders the project at `root` and maps every tag's Dockerfile: `(image:tag, [(rendered
/// line, file:line)])`.
fn maps(root: &Path) -> Vec<(String, Vec<(String, String)>)> {
    let project = Project::load(root, &|_| None).unwrap().project;
    let options = Options::default();
    let rendered = crate::render(&project, &options).unwrap();
    let mapper = Mapper::new(&project, &options);
    rendered
        .tags
        .iter()
        .map(|tag| {
            let map = mapper.dockerfile(tag).unwrap();
            assert_eq!(map.len(), tag.dockerfile.lines().count());
            let lines = tag
                .dockerfile
                .lines()
                .enumerate()
                .map(|(index, text)| {
                    let origin = map
                        .origin(index + 1)
                        .map_or("-".to_owned(), |o| format!("{}:{}", o.file, o.line));
                    (text.to_owned(), origin)
                })
                .collect();
            (format!("{}:{}", tag.image, tag.tag), lines)
        })
        .collect()
}

fn pairs(lines: &[(&str, &str)]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn lines_map_to_template_lines_through_includes_and_loops() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "images/app/image.yml",
        "tags: ['1.0']\nvariables:\n  packages: [curl, git]\n",
    );
    write(
        root,
        "images/app/Dockerfile.jinja2",
        "{# a comment line #}\n\
         FROM debian:bookworm\n\
         {% include \"common.jinja2\" %}\n\
         {% for package in variables.packages -%}\n\
         RUN apt-get install -y \\\n    {{ package }}\n\
         {% endfor -%}\n\
         {{ \"USER 1000\" }}\n",
    );
    write(
        root,
        "templates/common.jinja2",
        "# shared\nENV A=1\n{% if true %}\nWORKDIR /srv\n{% endif %}\n",
    );
    let maps = maps(root);
    assert_eq!(maps.len(), 1);
    assert_eq!(
        maps[0].1,
        pairs(&[
            ("", "images/app/Dockerfile.jinja2:1"),
            ("FROM debian:bookworm", "images/app/Dockerfile.jinja2:2"),
            ("# shared", "templates/common.jinja2:1"),
            ("ENV A=1", "templates/common.jinja2:2"),
            ("", "templates/common.jinja2:3"),
            ("WORKDIR /srv", "templates/common.jinja2:4"),
            ("", "templates/common.jinja2:5"),
            ("", "images/app/Dockerfile.jinja2:3"),
            (
                "RUN apt-get install -y \\",
                "images/app/Dockerfile.jinja2:5"
            ),
            ("    curl", "images/app/Dockerfile.jinja2:6"),
            (
                "RUN apt-get install -y \\",
                "images/app/Dockerfile.jinja2:5"
            ),
            ("    git", "images/app/Dockerfile.jinja2:6"),
            ("USER 1000", "images/app/Dockerfile.jinja2:8"),
        ])
    );
}

#[test]
fn the_injected_rootfs_copy_has_no_origin_and_later_lines_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "images/app/image.yml", "tags: ['1.0']\n");
    write(root, "images/app/rootfs/etc/app.conf", "x\n");
    write(
        root,
        "images/app/Dockerfile.jinja2",
        "FROM debian:bookworm\n{{ 'RUN true' }}\nUSER 1000\n",
    );
    let maps = maps(root);
    assert_eq!(
        maps[0].1,
        pairs(&[
            ("FROM debian:bookworm", "images/app/Dockerfile.jinja2:1"),
            ("COPY --chown=0:0 rootfs/ /", "-"),
            ("RUN true", "images/app/Dockerfile.jinja2:2"),
            ("USER 1000", "images/app/Dockerfile.jinja2:3"),
        ])
    );
}

#[test]
fn a_plain_dockerfile_maps_to_itself_and_variants_to_their_own_template() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "images/app/image.yml",
        "tags: ['1.0']\nvariants:\n  - {name: dev, tag_suffix: -dev}\n",
    );
    write(
        root,
        "images/app/Dockerfile",
        "FROM debian:bookworm\n\nRUN true\n",
    );
    write(
        root,
        "images/app/dev/Dockerfile.jinja2",
        "{%- set x = 1 %}\nFROM {{ base_image }}\nRUN echo {{ x }}\n",
    );
    let maps = maps(root);
    assert_eq!(
        maps,
        vec![
            (
                "app:1.0".to_owned(),
                pairs(&[
                    ("FROM debian:bookworm", "images/app/Dockerfile:1"),
                    ("", "images/app/Dockerfile:2"),
                    ("RUN true", "images/app/Dockerfile:3"),
                ])
            ),
            (
                "app:1.0-dev".to_owned(),
                pairs(&[
                    ("", "images/app/dev/Dockerfile.jinja2:1"),
                    ("FROM app:1.0", "images/app/dev/Dockerfile.jinja2:2"),
                    ("RUN echo 1", "images/app/dev/Dockerfile.jinja2:3"),
                ])
            ),
        ]
    );
}

#[test]
fn macro_output_and_multi_line_values_map_to_the_line_that_prints_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "images/app/image.yml",
        "tags: ['1.0']\nvariables:\n  steps: \"RUN a\\nRUN b\"\n",
    );
    write(
        root,
        "images/app/Dockerfile.jinja2",
        "{% macro install(p) -%}\nRUN apt-get install -y {{ p }}\n{%- endmacro %}\nFROM debian:bookworm\n{{ install(\"curl\") }}\n{{ variables.steps }}\n",
    );
    let maps = maps(root);
    assert_eq!(
        maps[0].1,
        pairs(&[
            ("", "images/app/Dockerfile.jinja2:3"),
            ("FROM debian:bookworm", "images/app/Dockerfile.jinja2:4"),
            (
                "RUN apt-get install -y curl",
                "images/app/Dockerfile.jinja2:5"
            ),
            ("RUN a", "images/app/Dockerfile.jinja2:6"),
            ("RUN b", "images/app/Dockerfile.jinja2:6"),
        ])
    );
}
