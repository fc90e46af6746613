# Front door. Everything real happens in meson (build/) and in the scripts
# under scripts/; this file only strings them together.
#
#   make deps    install the Debian packages the project needs (once)
#   make         build everything, the guest kernel included (cached)
#   make demo    deps + build + run a sandbox on the built-in image
#   make test    deps + build + the whole test suite
#   make check   formatting and warnings-as-errors build

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
MESON_OPTS ?=

PACKAGES := \
	meson ninja-build pkg-config gcc clang make \
	libext2fs-dev libcmocka-dev musl-tools libsqlite3-dev \
	libarchive-dev libcurl4-openssl-dev libssl-dev \
	linux-source-6.1 bc bison flex libelf-dev cpio xz-utils \
	qemu-system-x86 busybox-static e2fsprogs \
	python3 python3-pytest libclang-rt-14-dev clang-format \
	docker-registry skopeo umoci apache2-utils python3-jwt python3-cryptography zstd \
	iproute2 iperf3 passt slirp4netns

.PHONY: all deps build demo test unit fuzz asan e2e check format clean

all: build

deps:
	@scripts/deps.sh $(PACKAGES)

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: deps build
	@scripts/demo.sh $(BUILD)

test: deps build
	@scripts/test.sh $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)

unit: build
	meson test -C $(BUILD) --print-errorlogs --no-suite fuzz --no-suite netns

e2e: build
	MSB_BUILD=$(abspath $(BUILD)) /usr/bin/python3 -m pytest -q tests/integration

check:
	@scripts/check-format.sh
	meson setup --wipe $(BUILD)-werror -Dwerror=true -Dkernel=false >/dev/null
	ninja -C $(BUILD)-werror

format:
	@scripts/check-format.sh --fix

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) $(BUILD)-werror
