// Built-in architectures: graph builders mirroring torchvision's module structure and forward
// order (so a graph traced from the torchvision module by tools/export_pytorch.py has the same
// nodes), with state_dict names as parameter prefixes and block annotations for the units.
#include "models/archs.h"

#include <cmath>
#include <functional>
#include <map>

namespace genie::models {
namespace {

// Small helper that appends nodes, tagging them with the current block.
struct Builder {
  Graph g;
  float eps = 1e-5f;
  std::string block, block_kind;

  int push(Node n, std::vector<int> inputs) {
    n.inputs = std::move(inputs);
    n.block = block;
    n.block_kind = block.empty() ? "" : block_kind;
    return g.add(std::move(n));
  }
  int conv(int x, const std::string& name, int64_t cin, int64_t cout, int64_t k, int64_t stride,
           int64_t pad, int64_t groups = 1, bool bias = false) {
    Node n;
    n.op = "conv";
    n.name = name;
    n.in_ch = cin;
    n.out_ch = cout;
    n.kernel = k;
    n.stride = stride;
    n.pad = pad;
    n.groups = groups;
    n.has_bias = bias;
    return push(n, {x});
  }
  int bn(int x, const std::string& name, int64_t c) {
    Node n;
    n.op = "bn";
    n.name = name;
    n.in_ch = n.out_ch = c;
    n.eps = eps;
    return push(n, {x});
  }
  int act(int x, const std::string& op, const std::string& name = "") {
    Node n;
    n.op = op;
    n.name = name;
    return push(n, {x});
  }
  int add(int a, int b) {
    Node n;
    n.op = "add";
    return push(n, {a, b});
  }
  int maxpool(int x, const std::string& name, int64_t k, int64_t s, int64_t p) {
    Node n;
    n.op = "maxpool";
    n.name = name;
    n.kernel = k;
    n.stride = s;
    n.pad = p;
    return push(n, {x});
  }
  int linear(int x, const std::string& name, int64_t in, int64_t out, bool bias = true) {
    Node n;
    n.op = "linear";
    n.name = name;
    n.in_ch = in;
    n.out_ch = out;
    n.has_bias = bias;
    return push(n, {x});
  }
  // conv → bn [→ activation], torchvision's Conv2dNormActivation (prefix.0, prefix.1, prefix.2).
  int conv_bn_act(int x, const std::string& p, int64_t cin, int64_t cout, int64_t k, int64_t s,
                  int64_t groups, const std::string& act_op) {
    x = conv(x, p + ".0", cin, cout, k, s, (k - 1) / 2, groups);
    x = bn(x, p + ".1", cout);
    return act_op.empty() ? x : act(x, act_op, p + ".2");
  }
  void begin_block(const std::string& b, const std::string& kind) {
    block = b;
    block_kind = kind;
  }
  void end_block() { block.clear(), block_kind.clear(); }
};

// ---- ResNets ----

int basic_block(Builder& B, int x, const std::string& p, int64_t inp, int64_t planes,
                int64_t stride) {
  B.begin_block(p, "basic_block");
  int y = B.conv(x, p + ".conv1", inp, planes, 3, stride, 1);
  y = B.bn(y, p + ".bn1", planes);
  y = B.act(y, "relu", p + ".relu");
  y = B.conv(y, p + ".conv2", planes, planes, 3, 1, 1);
  y = B.bn(y, p + ".bn2", planes);
  int sc = x;
  if (stride != 1 || inp != planes) {
    sc = B.conv(x, p + ".downsample.0", inp, planes, 1, stride, 0);
    sc = B.bn(sc, p + ".downsample.1", planes);
  }
  y = B.add(y, sc);
  y = B.act(y, "relu", p + ".relu");
  B.end_block();
  return y;
}

int bottleneck(Builder& B, int x, const std::string& p, int64_t inp, int64_t planes,
               int64_t stride) {
  B.begin_block(p, "bottleneck");
  const int64_t width = planes, out = planes * 4;
  int y = B.conv(x, p + ".conv1", inp, width, 1, 1, 0);
  y = B.bn(y, p + ".bn1", width);
  y = B.act(y, "relu", p + ".relu");
  y = B.conv(y, p + ".conv2", width, width, 3, stride, 1);
  y = B.bn(y, p + ".bn2", width);
  y = B.act(y, "relu", p + ".relu");
  y = B.conv(y, p + ".conv3", width, out, 1, 1, 0);
  y = B.bn(y, p + ".bn3", out);
  int sc = x;
  if (stride != 1 || inp != out) {
    sc = B.conv(x, p + ".downsample.0", inp, out, 1, stride, 0);
    sc = B.bn(sc, p + ".downsample.1", out);
  }
  y = B.add(y, sc);
  y = B.act(y, "relu", p + ".relu");
  B.end_block();
  return y;
}

Graph resnet20(const ModelInfo& info, float eps) {
  Builder B;
  B.eps = eps;
  int x = B.conv(-1, "conv1", info.C, 16, 3, 1, 1);
  x = B.bn(x, "bn1", 16);
  x = B.act(x, "relu", "relu");
  int64_t inp = 16;
  for (int s = 0; s < 3; ++s) {
    const int64_t planes = int64_t(16) << s;
    for (int b = 0; b < 3; ++b) {
      x = basic_block(B, x, str("layer", s + 1, ".", b), inp, planes, (s > 0 && b == 0) ? 2 : 1);
      inp = planes;
    }
  }
  x = B.act(x, "avgpool", "avgpool");
  x = B.act(x, "flatten");
  B.linear(x, "fc", 64, info.num_classes);
  return B.g;
}

Graph resnet_imagenet(const ModelInfo& info, float eps, bool bottle,
                      const std::vector<int>& layers) {
  Builder B;
  B.eps = eps;
  int x = B.conv(-1, "conv1", info.C, 64, 7, 2, 3);
  x = B.bn(x, "bn1", 64);
  x = B.act(x, "relu", "relu");
  x = B.maxpool(x, "maxpool", 3, 2, 1);
  const int64_t expansion = bottle ? 4 : 1;
  int64_t inp = 64;
  for (int s = 0; s < 4; ++s) {
    const int64_t planes = int64_t(64) << s;
    for (int b = 0; b < layers[size_t(s)]; ++b) {
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      const std::string p = str("layer", s + 1, ".", b);
      x = bottle ? bottleneck(B, x, p, inp, planes, stride)
                 : basic_block(B, x, p, inp, planes, stride);
      inp = planes * expansion;
    }
  }
  x = B.act(x, "avgpool", "avgpool");
  x = B.act(x, "flatten");
  B.linear(x, "fc", inp, info.num_classes);
  return B.g;
}

// ---- MobileNetV2 ----

// torchvision's _make_divisible: round to the nearest multiple of `divisor`, never below
// `divisor` and never more than 10% below v.
int64_t make_divisible(double v, int64_t divisor) {
  int64_t nv = std::max<int64_t>(divisor, int64_t(v + double(divisor) / 2) / divisor * divisor);
  if (double(nv) < 0.9 * v) nv += divisor;
  return nv;
}

Graph mobilenet_v2(const ModelInfo& info, float eps) {
  Builder B;
  B.eps = eps;
  int64_t inp = make_divisible(32.0, 8);
  int x = B.conv_bn_act(-1, "features.0", info.C, inp, 3, 2, 1, "relu6");
  const int64_t setting[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                 {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  int idx = 1;
  for (const auto& st : setting) {
    const int64_t t = st[0], out = make_divisible(double(st[1]), 8);
    for (int64_t i = 0; i < st[2]; ++i, ++idx) {
      const int64_t stride = i == 0 ? st[3] : 1;
      const std::string p = str("features.", idx, ".conv");
      B.begin_block(str("features.", idx), "inverted_residual");
      const int64_t hidden = int64_t(std::lround(double(inp * t)));
      int y = x, j = 0;
      if (t != 1) y = B.conv_bn_act(y, str(p, ".", j++), inp, hidden, 1, 1, 1, "relu6");
      y = B.conv_bn_act(y, str(p, ".", j++), hidden, hidden, 3, stride, hidden, "relu6");
      y = B.conv(y, str(p, ".", j++), hidden, out, 1, 1, 0);
      y = B.bn(y, str(p, ".", j++), out);
      if (stride == 1 && inp == out) y = B.add(x, y);
      B.end_block();
      x = y;
      inp = out;
    }
  }
  const int64_t last = make_divisible(1280.0, 8);
  x = B.conv_bn_act(x, str("features.", idx), inp, last, 1, 1, 1, "relu6");
  x = B.act(x, "avgpool");
  x = B.act(x, "flatten");
  x = B.act(x, "identity", "classifier.0");  // Dropout in eval mode
  B.linear(x, "classifier.1", last, info.num_classes);
  return B.g;
}

// ---- MnasNet-1.0 ----

Graph mnasnet1_0(const ModelInfo& info, float eps) {
  Builder B;
  B.eps = eps;
  const int64_t d[8] = {32, 16, 24, 40, 80, 96, 192, 320};  // _get_depths(1.0)
  int x = B.conv(-1, "layers.0", info.C, d[0], 3, 2, 1);
  x = B.bn(x, "layers.1", d[0]);
  x = B.act(x, "relu", "layers.2");
  x = B.conv(x, "layers.3", d[0], d[0], 3, 1, 1, d[0]);
  x = B.bn(x, "layers.4", d[0]);
  x = B.act(x, "relu", "layers.5");
  x = B.conv(x, "layers.6", d[0], d[1], 1, 1, 0);
  x = B.bn(x, "layers.7", d[1]);
  // _stack(in, out, kernel, stride, expansion, repeats)
  const int64_t stacks[6][5] = {{3, 2, 3, 3, 0}, {5, 2, 3, 3, 0}, {5, 2, 6, 3, 0},
                                {3, 1, 6, 2, 0}, {5, 2, 6, 4, 0}, {3, 1, 6, 1, 0}};
  for (int s = 0; s < 6; ++s) {
    const int64_t k = stacks[s][0], stride0 = stacks[s][1], e = stacks[s][2], reps = stacks[s][3];
    for (int64_t r = 0; r < reps; ++r) {
      const int64_t cin = r == 0 ? d[s + 1] : d[s + 2], cout = d[s + 2],
                    stride = r == 0 ? stride0 : 1;
      const int64_t mid = cin * e;
      const std::string blk = str("layers.", 8 + s, ".", r), p = blk + ".layers.";
      B.begin_block(blk, "mnas_block");
      int y = B.conv(x, p + "0", cin, mid, 1, 1, 0);
      y = B.bn(y, p + "1", mid);
      y = B.act(y, "relu", p + "2");
      y = B.conv(y, p + "3", mid, mid, k, stride, k / 2, mid);
      y = B.bn(y, p + "4", mid);
      y = B.act(y, "relu", p + "5");
      y = B.conv(y, p + "6", mid, cout, 1, 1, 0);
      y = B.bn(y, p + "7", cout);
      if (cin == cout && stride == 1) y = B.add(y, x);
      B.end_block();
      x = y;
    }
  }
  x = B.conv(x, "layers.14", d[7], 1280, 1, 1, 0);
  x = B.bn(x, "layers.15", 1280);
  x = B.act(x, "relu", "layers.16");
  x = B.act(x, "avgpool");  // x.mean([2, 3])
  x = B.act(x, "identity", "classifier.0");
  B.linear(x, "classifier.1", 1280, info.num_classes);
  return B.g;
}

// ---- RegNetX ----

Graph regnet_x(const ModelInfo& info, float eps, int depth, double w0, double wa, double wm,
               int64_t gw) {
  const RegNetStages st = regnet_stages(depth, w0, wa, wm, gw);
  Builder B;
  B.eps = eps;
  int x = B.conv_bn_act(-1, "stem", info.C, 32, 3, 2, 1, "relu");
  int64_t win = 32;
  for (size_t s = 0; s < st.widths.size(); ++s) {
    const int64_t wout = st.widths[s], g = st.group_widths[s];
    for (int64_t i = 0; i < st.depths[s]; ++i) {
      const int64_t stride = i == 0 ? 2 : 1;
      const std::string p = str("trunk_output.block", s + 1, ".block", s + 1, "-", i);
      B.begin_block(p, "regnet_block");
      int sc = x;
      const bool proj = win != wout || stride != 1;
      if (proj) sc = B.conv_bn_act(x, p + ".proj", win, wout, 1, stride, 1, "");
      const int64_t wb = wout;  // bottleneck multiplier 1.0
      int y = B.conv_bn_act(x, p + ".f.a", win, wb, 1, 1, 1, "relu");
      y = B.conv_bn_act(y, p + ".f.b", wb, wb, 3, stride, wb / g, "relu");
      y = B.conv_bn_act(y, p + ".f.c", wb, wout, 1, 1, 1, "");
      y = B.add(sc, y);
      y = B.act(y, "relu", p + ".activation");
      B.end_block();
      x = y;
      win = wout;
    }
  }
  x = B.act(x, "avgpool", "avgpool");
  x = B.act(x, "flatten");
  B.linear(x, "fc", win, info.num_classes);
  return B.g;
}

using Factory = std::function<Graph(const ModelInfo&, float)>;

const std::vector<std::pair<std::string, Factory>>& registry() {
  static const std::vector<std::pair<std::string, Factory>> r = {
      {"resnet20", resnet20},
      {"resnet18",
       [](const ModelInfo& i, float e) {
         return resnet_imagenet(i, e, false, {2, 2, 2, 2});
       }},
      {"resnet50",
       [](const ModelInfo& i, float e) {
         return resnet_imagenet(i, e, true, {3, 4, 6, 3});
       }},
      {"mobilenet_v2", mobilenet_v2},
      {"regnet_x_400mf",
       [](const ModelInfo& i, float e) { return regnet_x(i, e, 22, 24, 24.48, 2.54, 16); }},
      {"regnet_x_600mf",
       [](const ModelInfo& i, float e) { return regnet_x(i, e, 16, 48, 36.97, 2.24, 24); }},
      {"regnet_x_3_2gf",
       [](const ModelInfo& i, float e) { return regnet_x(i, e, 25, 88, 26.31, 2.25, 48); }},
      {"mnasnet1_0", mnasnet1_0},
  };
  return r;
}

}  // namespace

RegNetStages regnet_stages(int depth, double w0, double wa, double wm, int64_t group_width) {
  GENIE_CHECK(depth > 0 && wa >= 0 && w0 > 0 && wm > 1 && std::fmod(w0, 8.0) == 0.0,
              "[regnet] expected depth > 0, wa >= 0, w0 > 0 divisible by 8, wm > 1, got depth ",
              depth, " w0 ", w0, " wa ", wa, " wm ", wm);
  // torchvision evaluates these in float32 tensors (torch.arange(depth) * w_a + w_0, torch.log,
  // torch.pow, torch.round = half to even); float arithmetic here reproduces the same widths.
  const float fw0 = float(w0), fwa = float(wa), fwm = float(wm);
  const float log_wm = float(std::log(wm));
  std::vector<int64_t> bw(static_cast<size_t>(depth));
  for (int i = 0; i < depth; ++i) {
    const float cont = float(i) * fwa + fw0;
    const float cap = std::nearbyint(std::log(cont / fw0) / log_wm);
    bw[size_t(i)] = int64_t(std::nearbyint(fw0 * std::pow(fwm, cap) / 8.f) * 8.f);
  }
  RegNetStages st;
  // Stage boundaries where the block width changes.
  std::vector<int> starts;
  for (int i = 0; i < depth; ++i)
    if (i == 0 || bw[size_t(i)] != bw[size_t(i - 1)]) starts.push_back(i);
  for (size_t s = 0; s < starts.size(); ++s) {
    const int end = s + 1 < starts.size() ? starts[s + 1] : depth;
    st.widths.push_back(bw[size_t(starts[s])]);
    st.depths.push_back(end - starts[s]);
  }
  // _adjust_widths_groups_compatibilty with bottleneck multiplier 1.
  for (auto& w : st.widths) {
    const int64_t g = std::min(group_width, w);
    w = make_divisible(double(w), g);
    st.group_widths.push_back(g);
  }
  return st;
}

const std::vector<std::string>& known_archs() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& kv : registry()) n.push_back(kv.first);
    return n;
  }();
  return names;
}

bool is_known_arch(const std::string& name) {
  for (const auto& n : known_archs())
    if (n == name) return true;
  return false;
}

Graph make_arch(const std::string& name, const ModelInfo& info, float bn_eps) {
  for (const auto& kv : registry())
    if (kv.first == name) {
      GENIE_CHECK(info.C > 0 && info.num_classes > 0, "[make_arch] ", name,
                  ": expected input channels > 0 and num_classes > 0, got C ", info.C,
                  " num_classes ", info.num_classes);
      Graph g = kv.second(info, bn_eps);
      g.validate();
      return g;
    }
  std::string known;
  for (const auto& n : known_archs()) known += (known.empty() ? "" : ", ") + n;
  GENIE_CHECK(false, "[make_arch] unknown architecture '", limits::clip(name), "' (known: ", known,
              ")");
  return Graph();
}

}  // namespace genie::models
