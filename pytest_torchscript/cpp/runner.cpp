// pytest-torchscript's C++ round trip: load an artifact with LibTorch alone, as a C++ service
// deploys it (no Python anywhere in this process), run every input set, write the outputs.
//
//   runner ARTIFACT.pt INPUTS OUTPUTS DEVICE      a TorchScript module (torch::jit::load)
//   runner PACKAGE.pt2 INPUTS OUTPUTS DEVICE      an AOTInductor package (AOTIModelPackageLoader)
//
// INPUTS is a torch.save'd list of (args tuple, kwargs dict) of CPU tensors (for a package: the
// flattened input tensors as args, in the exported program's order); OUTPUTS is written
// with torch::jit::pickle_save, a list with one entry per input set, readable by torch.load. Named
// tuples become plain tuples (their Python classes do not exist here). Exit status: 0 ok, 2 an
// error (its message on stderr); a crash is the caller's to report.
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/script.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

namespace {

std::vector<char> read_file(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw std::runtime_error("cannot open " + path);
  return {std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::vector<char>& data) {
  std::ofstream stream(path, std::ios::binary);
  stream.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!stream) throw std::runtime_error("cannot write " + path);
}

// Inputs onto the device; outputs back to the CPU as plain containers.
c10::IValue moved(const c10::IValue& value, const c10::Device& device) {
  if (value.isTensor()) return value.toTensor().to(device);
  if (value.isTuple()) {
    std::vector<c10::IValue> items;
    for (const auto& item : value.toTupleRef().elements()) items.push_back(moved(item, device));
    return c10::ivalue::Tuple::create(std::move(items));
  }
  if (value.isList()) {
    c10::impl::GenericList items(c10::AnyType::get());
    for (const auto& item : value.toListRef()) items.push_back(moved(item, device));
    return items;
  }
  if (value.isGenericDict()) {
    c10::impl::GenericDict items(c10::AnyType::get(), c10::AnyType::get());
    for (const auto& entry : value.toGenericDict()) {
      items.insert(entry.key(), moved(entry.value(), device));
    }
    return items;
  }
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: runner ARTIFACT.pt INPUTS OUTPUTS DEVICE\n";
    return 2;
  }
  try {
    const c10::Device device(argv[4]);
    const c10::Device cpu(c10::kCPU);
    const std::string artifact(argv[1]);
    if (artifact.size() > 4 && artifact.compare(artifact.size() - 4, 4, ".pt2") == 0) {
      torch::inductor::AOTIModelPackageLoader loader(artifact);
      torch::NoGradGuard no_grad;
      const c10::IValue sets = torch::jit::pickle_load(read_file(argv[2]));
      c10::impl::GenericList outputs(c10::AnyType::get());
      for (const auto& set : sets.toListRef()) {
        std::vector<at::Tensor> inputs;
        for (const auto& arg : set.toTupleRef().elements().at(0).toTupleRef().elements()) {
          inputs.push_back(arg.toTensor().to(device));
        }
        c10::impl::GenericList flat(c10::AnyType::get());
        for (const auto& output : loader.run(inputs)) flat.push_back(output.to(cpu));
        outputs.push_back(flat);
      }
      write_file(argv[3], torch::jit::pickle_save(outputs));
      return 0;
    }
    torch::jit::Module module = torch::jit::load(artifact, device);
    module.eval();
    torch::NoGradGuard no_grad;
    const c10::IValue sets = torch::jit::pickle_load(read_file(argv[2]));
    c10::impl::GenericList outputs(c10::AnyType::get());
    for (const auto& set : sets.toListRef()) {
      const auto& pair = set.toTupleRef().elements();
      std::vector<c10::IValue> args;
      for (const auto& arg : pair.at(0).toTupleRef().elements()) args.push_back(moved(arg, device));
      torch::jit::Kwargs kwargs;
      for (const auto& entry : pair.at(1).toGenericDict()) {
        kwargs[entry.key().toStringRef()] = moved(entry.value(), device);
      }
      outputs.push_back(moved(module.forward(std::move(args), kwargs), cpu));
    }
    write_file(argv[3], torch::jit::pickle_save(outputs));
  } catch (const std::exception& error) {
    std::cerr << error.what() << "\n";
    return 2;
  }
  return 0;
}
