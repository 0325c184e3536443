// pytest-torchscript's C++ round trip: load an artifact with LibTorch alone, as a C++ service
// deploys it (no Python anywhere in this process), run every input set, write the outputs.
//
//   runner ARTIFACT.pt INPUTS OUTPUTS DEVICE      a TorchScript module (torch::jit::load)
//   runner PACKAGE.pt2 INPUTS OUTPUTS DEVICE      an AOTInductor package (AOTIModelPackageLoader)
//   runner --serve                                the same, for each request line on stdin:
//       ARTIFACT \t INPUTS \t OUTPUTS \t DEVICE \t ERRORFILE  ->  "ok" or "error" on stdout
//       (the message in ERRORFILE). One process serves a whole pytest session, so the process
//       start and LibTorch's load are paid once; it exits at the end of stdin, and on Linux when
//       its parent dies.
//
// INPUTS is a torch.save'd list of (args tuple, kwargs dict) of CPU tensors (for a package: the
// flattened input tensors as args, in the exported program's order); OUTPUTS is written
// with torch::jit::pickle_save, a list with one entry per input set, readable by torch.load. Named
// tuples become plain tuples (their Python classes do not exist here). Exit status: 0 ok, 2 an
// error (its message on stderr); a crash is the caller's to report.
//
// PYTEST_TORCHSCRIPT_AOTI is defined where the LibTorch has AOTInductor's package loader (torch
// 2.6 and later); older LibTorch builds the runner without it, for TorchScript artifacts alone.
#ifdef PYTEST_TORCHSCRIPT_AOTI
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#endif
#include <torch/script.h>

#ifdef __linux__
#include <sys/prctl.h>

#include <csignal>
#endif

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

// Outputs back to the CPU as plain containers.
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

// Inputs onto the device, as the types forward() declares. The pickled inputs hold untyped
// containers (a Python list loads as List[Any]), which a method taking List[Tensor] or
// Dict[str, Tensor] rejects; a C++ service builds them typed (c10::List<at::Tensor>), so
// the runner does too, from the schema.
c10::IValue declared(const c10::IValue& value, c10::TypePtr type, const c10::Device& device) {
  if (auto optional = type->cast<c10::OptionalType>()) {
    if (value.isNone()) return value;
    type = optional->getElementType();
  }
  if (value.isTensor()) return value.toTensor().to(device);
  if (value.isTuple()) {
    const auto tuple = type->cast<c10::TupleType>();
    const auto& elements = value.toTupleRef().elements();
    std::vector<c10::IValue> items;
    for (size_t i = 0; i < elements.size(); ++i) {
      const bool known = tuple && i < tuple->elements().size();
      const c10::TypePtr element = known ? tuple->elements()[i] : c10::AnyType::get();
      items.push_back(declared(elements[i], element, device));
    }
    if (tuple && tuple->schema()) {  // a NamedTuple: an unnamed tuple is not one to LibTorch
      return c10::ivalue::Tuple::createNamed(std::move(items), tuple);
    }
    return c10::ivalue::Tuple::create(std::move(items));
  }
  if (value.isList()) {
    const auto list = type->cast<c10::ListType>();
    const c10::TypePtr element = list ? list->getElementType() : c10::AnyType::get();
    c10::impl::GenericList items(element);
    for (const auto& item : value.toListRef()) items.push_back(declared(item, element, device));
    return items;
  }
  if (value.isGenericDict()) {
    const auto dict = type->cast<c10::DictType>();
    const c10::TypePtr key = dict ? dict->getKeyType() : c10::AnyType::get();
    const c10::TypePtr item = dict ? dict->getValueType() : c10::AnyType::get();
    c10::impl::GenericDict items(key, item);
    for (const auto& entry : value.toGenericDict()) {
      items.insert(entry.key(), declared(entry.value(), item, device));
    }
    return items;
  }
  return value;
}

// One request: 0, or 2 with LibTorch's message in `error`.
int run(const std::string& artifact, const std::string& inputs, const std::string& outputs_path,
        const std::string& device_name, std::string& error) {
  try {
    const c10::Device device(device_name);
    const c10::Device cpu(c10::kCPU);
    if (artifact.size() > 4 && artifact.compare(artifact.size() - 4, 4, ".pt2") == 0) {
#ifndef PYTEST_TORCHSCRIPT_AOTI
      error = "this LibTorch has no AOTInductor package loader "
              "(torch/csrc/inductor/aoti_package/model_package_loader.h)";
      return 2;
#else
      torch::inductor::AOTIModelPackageLoader loader(artifact);
      torch::NoGradGuard no_grad;
      const c10::IValue sets = torch::jit::pickle_load(read_file(inputs));
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
      write_file(outputs_path, torch::jit::pickle_save(outputs));
      return 0;
#endif
    }
    torch::jit::Module module = torch::jit::load(artifact, device);
    module.eval();
    const auto& schema = module.get_method("forward").function().getSchema().arguments();
    const auto declared_type = [&schema](size_t position, const std::string& name) {
      for (size_t i = 1; i < schema.size(); ++i) {  // 0 is self
        if (name.empty() ? i == position + 1 : schema[i].name() == name) return schema[i].type();
      }
      return c10::TypePtr(c10::AnyType::get());  // *args: the runtime says what it wanted
    };
    torch::NoGradGuard no_grad;
    const c10::IValue sets = torch::jit::pickle_load(read_file(inputs));
    c10::impl::GenericList outputs(c10::AnyType::get());
    for (const auto& set : sets.toListRef()) {
      const auto& pair = set.toTupleRef().elements();
      std::vector<c10::IValue> args;
      const auto& positional = pair.at(0).toTupleRef().elements();
      for (size_t i = 0; i < positional.size(); ++i) {
        args.push_back(declared(positional[i], declared_type(i, ""), device));
      }
      torch::jit::Kwargs kwargs;
      for (const auto& entry : pair.at(1).toGenericDict()) {
        const std::string& name = entry.key().toStringRef();
        kwargs[name] = declared(entry.value(), declared_type(0, name), device);
      }
      outputs.push_back(moved(module.forward(std::move(args), kwargs), cpu));
    }
    write_file(outputs_path, torch::jit::pickle_save(outputs));
  } catch (const c10::Error& failure) {
    // LibTorch's own message, without the C++ stack of frames inside libtorch.
    error = failure.what_without_backtrace();
    return 2;
  } catch (const std::exception& failure) {
    error = failure.what();
    return 2;
  }
  return 0;
}

int serve() {
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the pytest process, even one killed
#endif
  std::string line;
  while (std::getline(std::cin, line)) {
    std::vector<std::string> fields;
    size_t start = 0;
    for (size_t tab = line.find('\t'); tab != std::string::npos; tab = line.find('\t', start)) {
      fields.push_back(line.substr(start, tab - start));
      start = tab + 1;
    }
    fields.push_back(line.substr(start));
    std::string error;
    if (fields.size() != 5) {
      std::cout << "bad request: " << fields.size() << " fields" << std::endl;
      continue;
    }
    if (run(fields[0], fields[1], fields[2], fields[3], error) == 0) {
      std::cout << "ok" << std::endl;
    } else {
      std::ofstream(fields[4]) << error;
      std::cout << "error" << std::endl;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--serve") return serve();
  if (argc != 5) {
    std::cerr << "usage: runner ARTIFACT.pt INPUTS OUTPUTS DEVICE | runner --serve\n";
    return 2;
  }
  std::string error;
  const int status = run(argv[1], argv[2], argv[3], argv[4], error);
  if (status != 0) std::cerr << error << "\n";
  return status;
}
