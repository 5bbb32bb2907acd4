"""The public datasets of the gauntlets: where each comes from, what the platform reads, and how to verify it.

Layout under ``SM_DATASETS_DIR`` (``core.config.Settings.datasets_dir``) — the same as the notebooks and tests use::

    ai4i2020/ai4i2020.csv               notebook 05 (AI4I 2020)
    ims/raw/{1st,2nd,3rd}_test/<time>   notebook 06 (NASA IMS raw recordings)
    ims/features/test1_per_file.csv     the back-test example (IMS test 1, per-file statistics)
    cwru/12k_DE_0hp/<n>.mat             notebook 06 with ``cwru_path`` (CWRU bearing data)
    cmapss/train_FD001.txt, readme.txt  NASA C-MAPSS FD001
    mimii/id_XX/{normal,anomaly}_id_XX_*.wav   notebook 07 (MIMII / DCASE 2020 Task 2, fan)

A :class:`Source` is one download (one URL). Either it *is* a file the platform reads (``target`` set), or it is
an archive whose members are extracted (``members``: a regular expression on the member's path inside the
archive, nested archives included, and the destination template). A member or file with a ``sha256`` is checked
after download or extraction and refused when it differs; ``sha256=None`` means that no checksum could be obtained
offline for it — it is reported as *unverified* and listed, with its computed digest, in the folder's
``SHA256SUMS.unverified``. Where each checksum comes from is said in :attr:`Dataset.verification`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Member:
    """Files of an archive: ``pattern`` (regex, searched in the member's path relative to the extraction root,
    nested archives expanded in place) → ``target`` (a path under SM_DATASETS_DIR, ``{name}`` = the member's file
    name, ``{id}``/``{test}``… = the pattern's named groups)."""

    pattern: str
    target: str
    #: expected SHA-256 per target path for the members whose published bytes are known
    sha256: dict[str, str] = field(default_factory=dict)
    #: every target listed in ``sha256`` must be found in the archive
    required: bool = True


@dataclass(frozen=True)
class Source:
    url: str
    #: the file name of the download (the URL's last segment, unquoted), also its name on a ``--mirror``
    filename: str
    #: a file the platform reads as it is (relative to SM_DATASETS_DIR); None for an archive
    target: str | None = None
    sha256: str | None = None
    size: int | None = None
    #: archives only: what is extracted, and where to
    members: tuple[Member, ...] = ()
    #: approximate download size shown before starting (archives)
    approx_size: str | None = None

    @property
    def is_archive(self) -> bool:
        return self.target is None


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    sources: tuple[Source, ...]
    licence: str
    citation: str
    homepage: str
    #: what was verified offline, and against what
    verification: str

    def verified_files(self) -> dict[str, str]:
        """Every target path with a known SHA-256 (files and archive members)."""
        known: dict[str, str] = {}
        for source in self.sources:
            if source.target is not None and source.sha256 is not None:
                known[source.target] = source.sha256
            for member in source.members:
                known.update(member.sha256)
        return known


_CWRU_SHA256 = {
    "97": "16bf48babcf1c7ac224bc1a81cd9eafdb27e42d5cf559761907e067e8eeadf3c",
    "105": "f80b0ea04fd06b372a0eaec7c056543ea37e4bb4727a5b173d2a5bacd2aa9cab",
    "118": "b00628f8dd8d1d930af77fa465d1e5cdb385fe259489053f91f3680bda7f640e",
    "130": "35a095307d0971477049b343a1b5981dde465a58fb7f233ad89b035068c1717d",
    "169": "f5448673725c4ea2735fe7d3fe4b16ad82b217eac6b62c4bf351c4549b0a5229",
    "185": "5bea2c60f177215ba3ec4ae287faf745d7e14aed1a12efe9e37b27c27044bafc",
    "197": "fa571b47cd942f9514a920b403fb7c053cd442bb2963a360a96d0f61432f03e9",
    "209": "9f723d6d9d2eba714c6dc50f99321dffa73d8b1e4d3605675b2c2251511eff80",
    "222": "fcc0ee740fa123b1f4683f555458891719efb2857afd9fdee63e8fde0ed14469",
    "234": "ebcbdb96612e8085bbdbf81f0e5e8e8a8d1a693d1ec559c4894f7792771aa9b2",
}
_CWRU_SIZE = {
    "97": 3903344, "105": 2910768, "118": 2942112, "130": 2928192, "169": 2924712,
    "185": 2924712, "197": 2924712, "209": 2931672, "222": 2928192, "234": 2938632,
}  # fmt: skip

FEATURES_COMMIT = "a651f9455cffa85ab4ce4b52bd615588c0e1fd59"

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            name="ai4i2020",
            title="AI4I 2020 Predictive Maintenance Dataset",
            sources=(
                Source(
                    url="https://archive.ics.uci.edu/static/public/601/ai4i+2020+predictive+maintenance+dataset.zip",
                    filename="ai4i+2020+predictive+maintenance+dataset.zip",
                    members=(
                        Member(
                            pattern=r"(^|/)ai4i2020\.csv$",
                            target="ai4i2020/ai4i2020.csv",
                            sha256={
                                "ai4i2020/ai4i2020.csv": (
                                    "dc6630cd9b1f0f853922fad78a1b6436570d3f1ec863f1dd5c4340ac56bc8a8e"
                                )
                            },
                        ),
                    ),
                    approx_size="0.5 MB",
                ),
            ),
            licence="CC BY 4.0",
            citation=(
                'S. Matzka, "Explainable Artificial Intelligence for Predictive Maintenance Applications", '
                "Third International Conference on Artificial Intelligence for Industries (AI4I 2020), "
                "doi:10.1109/AI4I49448.2020.00023; UCI Machine Learning Repository, doi:10.24432/C5HS5C"
            ),
            homepage="https://archive.ics.uci.edu/dataset/601/ai4i+2020+predictive+maintenance+dataset",
            verification=(
                "ai4i2020.csv (member of the UCI zip): SHA-256 of a byte-identical copy of the published file "
                "(10,000 rows, UTF-8 with BOM, CRLF). The zip itself is not checksummed."
            ),
        ),
        Dataset(
            name="ims",
            title="NASA IMS bearing run-to-failure data (University of Cincinnati)",
            sources=(
                Source(
                    url="https://phm-datasets.s3.amazonaws.com/NASA/4.+Bearings.zip",
                    filename="4.+Bearings.zip",
                    members=(
                        Member(
                            pattern=r"(^|/)(?P<test>[123](st|nd|rd)_test)/(?P<name>\d{4}(\.\d{2}){5})$",
                            target="ims/raw/{test}/{name}",
                            sha256={
                                "ims/raw/1st_test/2003.10.22.12.06.24": (
                                    "fc5bd1309a101e6d50cd80e6384fcf4a63ab40b24fe5ad59180f9b40f332d889"
                                ),
                                "ims/raw/2nd_test/2004.02.12.10.32.39": (
                                    "be5367135fe5c081c7e3bad61c62967b8af892148f2fbb6cd32933f82a480b7a"
                                ),
                                "ims/raw/2nd_test/2004.02.12.10.42.39": (
                                    "e3f9f8fd546f2e492b83620ced598bc7a31113fbe18594cefab824ac316c438e"
                                ),
                                "ims/raw/2nd_test/2004.02.19.06.22.39": (
                                    "7d279b9767ca96569ad5cbb5e08a23f8eddf28eaf00361cc2f1d47a9979e8f73"
                                ),
                                "ims/raw/3rd_test/2004.04.18.02.42.55": (
                                    "fe5014b925a426cc620b1ad65e026cafb2fd29563c7e82af614e3086cf2d303a"
                                ),
                            },
                        ),
                    ),
                    approx_size="6 GB (zip holding IMS.7z, which holds one .rar per test; 9,464 files unpacked)",
                ),
                Source(
                    url=(
                        "https://raw.githubusercontent.com/fatemeh-studio/nasa-bearing-anomaly/"
                        f"{FEATURES_COMMIT}/data/processed/test1_raw.csv"
                    ),
                    filename="test1_raw.csv",
                    target="ims/features/test1_per_file.csv",
                    sha256="92df06fc3e54be5925c1bab9570741d6218354d193a1f27d5a26fd9f3415273c",
                    size=1905892,
                ),
            ),
            licence=(
                "NASA Prognostics Data Repository, public research data (cite the source); the per-file "
                "statistics (test1_per_file.csv): MIT licence, fatemeh-studio/nasa-bearing-anomaly"
            ),
            citation=(
                'J. Lee, H. Qiu, G. Yu, J. Lin, Rexnord Technical Services, "Bearing Data Set", IMS, University of '
                "Cincinnati, NASA Prognostics Data Repository, NASA Ames Research Center (2007); "
                'H. Qiu, J. Lee, J. Lin, G. Yu, "Wavelet filter-based weak signature detection method and its '
                'application on rolling element bearing prognostics", J. Sound Vib. 289 (2006) 1066-1090'
            ),
            homepage=(
                "https://www.nasa.gov/intelligent-systems-division/discovery-and-systems-health/pcoe/"
                "pcoe-data-set-repository/"
            ),
            verification=(
                "Raw recordings: SHA-256 of byte-identical copies of five published files (the first file of "
                "test 1, the first two and the last of test 2, the last of test 3); the other 9,459 recordings "
                "are extracted unverified (no published checksums). The archive is a zip holding a 7z holding "
                "rar files: unpacking the 7z and rar layers needs bsdtar (libarchive-tools) or 7z on PATH, and "
                "was not tried on the real archive (no network where this was written). test1_per_file.csv: "
                f"SHA-256 checked against the file in its source repository at commit {FEATURES_COMMIT}."
            ),
        ),
        Dataset(
            name="cwru",
            title="Case Western Reserve University bearing data (12 kHz drive end, 0 HP)",
            sources=tuple(
                Source(
                    url=f"https://engineering.case.edu/sites/default/files/{n}.mat",
                    filename=f"{n}.mat",
                    target=f"cwru/12k_DE_0hp/{n}.mat",
                    sha256=_CWRU_SHA256[n],
                    size=_CWRU_SIZE[n],
                )
                for n in _CWRU_SHA256
            ),
            licence="CWRU Bearing Data Center: publicly downloadable for research (cite the source)",
            citation=(
                "Case Western Reserve University Bearing Data Center, "
                'https://engineering.case.edu/bearingdatacenter; W. A. Smith, R. B. Randall, "Rolling element '
                'bearing diagnostics using the Case Western Reserve University data: a benchmark study", '
                "Mech. Syst. Signal Process. 64-65 (2015) 100-131"
            ),
            homepage="https://engineering.case.edu/bearingdatacenter",
            verification=(
                "SHA-256 of copies of the ten files as published in public repositories (renamed to their CWRU "
                "numbers), not fetched from the CWRU server itself: if the server's bytes differ, the download "
                "is refused and says so."
            ),
        ),
        Dataset(
            name="cmapss",
            title="NASA C-MAPSS turbofan engine degradation simulation (FD001)",
            sources=(
                Source(
                    url="https://phm-datasets.s3.amazonaws.com/NASA/6.+Turbofan+Engine+Degradation+Simulation+Data+Set.zip",
                    filename="6.+Turbofan+Engine+Degradation+Simulation+Data+Set.zip",
                    members=(
                        Member(
                            pattern=r"(^|/)(?P<name>train_FD001\.txt|readme\.txt)$",
                            target="cmapss/{name}",
                            sha256={
                                "cmapss/train_FD001.txt": (
                                    "963b5e22825b34d8b21c69e1aeb4af3e647050eb672ee8834ba4b5d91d2de0f8"
                                ),
                                "cmapss/readme.txt": (
                                    "4f5270554b775c67e73aff383c5436fd329d6e4cc3d3a116913276fae511269b"
                                ),
                            },
                        ),
                        Member(
                            pattern=r"(^|/)(?P<name>(train|test|RUL)_FD00[1-4]\.txt)$",
                            target="cmapss/{name}",
                            required=False,
                        ),
                    ),
                    approx_size="12 MB (zip holding CMAPSSData.zip)",
                ),
            ),
            licence="NASA Prognostics Data Repository, public research data (cite the source)",
            citation=(
                'A. Saxena, K. Goebel, D. Simon, N. Eklund, "Damage Propagation Modeling for Aircraft Engine '
                'Run-to-Failure Simulation", International Conference on Prognostics and Health Management '
                "(PHM 2008); NASA Ames Prognostics Data Repository"
            ),
            homepage=(
                "https://www.nasa.gov/intelligent-systems-division/discovery-and-systems-health/pcoe/"
                "pcoe-data-set-repository/"
            ),
            verification=(
                "train_FD001.txt and readme.txt: SHA-256 of byte-identical copies of the published files; the "
                "other sub-sets (FD002-FD004, test and RUL files) are extracted unverified."
            ),
        ),
        Dataset(
            name="mimii",
            title="MIMII machine sound, as the DCASE 2020 Task 2 development set (fan)",
            sources=(
                Source(
                    url="https://zenodo.org/records/3678171/files/dev_data_fan.zip",
                    filename="dev_data_fan.zip",
                    members=(
                        Member(
                            pattern=r"(^|/)test/(?P<name>(normal|anomaly)_(?P<id>id_\d{2})_\d+\.wav)$",
                            target="mimii/{id}/{name}",
                            required=False,
                        ),
                    ),
                    approx_size="1.7 GB",
                ),
            ),
            licence="CC BY-SA 4.0",
            citation=(
                'H. Purohit, R. Tanabe, K. Ichige, T. Endo, Y. Nikaido, K. Suefusa, Y. Kawaguchi, "MIMII Dataset: '
                'Sound Dataset for Malfunctioning Industrial Machine Investigation and Inspection", DCASE 2019 '
                'Workshop; Y. Koizumi et al., "Description and Discussion on DCASE2020 Challenge Task2", '
                "DCASE 2020 Workshop"
            ),
            homepage="https://zenodo.org/records/3678171",
            verification=(
                "Not verified: no checksum of the clips could be obtained offline (the local excerpt's machine "
                "type is not recorded, so its clips cannot be matched to archive members). The fan test clips "
                "(normal and anomalous, per machine id) are extracted into mimii/id_XX/ and listed with their "
                "computed SHA-256 in SHA256SUMS.unverified."
            ),
        ),
    )
}


def select(only: str | list[str] | None) -> list[Dataset]:
    """The datasets named in ``only`` (comma-separated or a list; None: all) in catalogue order.

    Raises ValueError naming the unknown names and the known ones."""
    if only is None:
        return list(DATASETS.values())
    names = [n.strip() for n in (only.split(",") if isinstance(only, str) else only) if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown or not names:
        raise ValueError(
            f"unknown dataset(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(DATASETS)}"
        )
    return [d for name, d in DATASETS.items() if name in names]
