"""Conan 2 recipe for apr: a header-only package (include/apr) and its library dependencies.

    conan create conan --build=missing

The recipe lives in conan/; the headers and LICENSE are exported from the repository root.
The optional parts (apr/serve.hpp, audio I/O, capture, crypto, hub) need system libraries
that are not declared here.
"""
import os

from conan import ConanFile
from conan.tools.files import copy, load
from conan.tools.layout import basic_layout
import re

required_conan_version = ">=2.0"


class AprConan(ConanFile):
    name = "apr"
    description = "Header-only C++20 inference for Whisper, Qwen2 and the APR model format"
    license = "Apache-2.0"
    topics = ("inference", "llm", "whisper", "qwen2", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    no_copy_source = True
    default_options = {"fftw/*:precision_double": True}

    def set_version(self):
        cmake = load(self, os.path.join(self.recipe_folder, "..", "CMakeLists.txt"))
        self.version = re.search(r"project\(apr VERSION ([0-9.]+)", cmake).group(1)

    def export_sources(self):
        root = os.path.join(self.recipe_folder, "..")
        copy(self, "include/*", root, self.export_sources_folder)
        copy(self, "LICENSE", root, self.export_sources_folder)

    def layout(self):
        basic_layout(self, src_folder=".")

    def requirements(self):
        self.requires("xsimd/13.0.0")
        self.requires("fmt/10.2.1")
        self.requires("nlohmann_json/3.11.3")
        self.requires("zstd/1.5.5")
        self.requires("lz4/1.9.4")
        self.requires("zlib/1.3.1")
        self.requires("pcre2/10.42")
        self.requires("utf8proc/2.9.0")
        self.requires("fftw/3.3.10")

    def validate(self):
        from conan.tools.build import check_min_cppstd
        check_min_cppstd(self, 20)

    def package_id(self):
        self.info.clear()

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"), os.path.join(self.package_folder, "include"))

    def package_info(self):
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        self.cpp_info.set_property("cmake_file_name", "apr")
        self.cpp_info.set_property("cmake_target_name", "apr::apr")
        self.cpp_info.requires = ["xsimd::xsimd", "fmt::fmt", "nlohmann_json::nlohmann_json", "zstd::zstd", "lz4::lz4",
                                  "zlib::zlib", "pcre2::pcre2", "utf8proc::utf8proc", "fftw::fftw"]
        if self.settings.os in ["Linux", "FreeBSD"]:
            self.cpp_info.system_libs = ["pthread"]
