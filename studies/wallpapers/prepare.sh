#!/usr/bin/env bash
# The data of studies/wallpapers-64.toml, from photographs that Debian packages ship
# (no download beyond the package archive; nothing of it is committed):
#   training: the 12 nature photographs of mate-backgrounds 1.26.0-1 (200 crops each)
#   test:     12 photographs of plasma-workspace-wallpapers 4:5.27.5-2 (8 crops each)
# Run from this folder: bash prepare.sh   (then: wmi study ../wallpapers-64.toml --out DIR)
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p debs
(cd debs && { [ -f mate-backgrounds_1.26.0-1_all.deb ] || apt-get download mate-backgrounds=1.26.0-1; } \
         && { ls plasma-workspace-wallpapers_*5.27.5-2_all.deb >/dev/null 2>&1 \
              || apt-get download plasma-workspace-wallpapers=4:5.27.5-2; })
for deb in debs/*.deb; do dpkg -x "$deb" debs/x; done
nature=debs/x/usr/share/backgrounds/mate/nature
[ -d crops ] || python make_crops.py crops 64 200 0 \
  $nature/{Aqua,Blinds,Dune,FreshFlower,Garden,GreenMeadow,LadyBird,RainDrops,Storm,TwoWings,Wood,YellowFlower}.jpg
[ -f shards/manifest.json ] || wmi data prepare crops shards --size 64 --preset plain --split 0.9,0.1,0 --seed 0
if [ ! -d test ]; then
  for name in Autumn BytheWater ColdRipple ColorfulCups DarkestHour EveningGlow FallenLeaf Grey Kite \
              OneStandsOut Path summer_1am; do
    python make_crops.py test.tmp 64 8 1 debs/x/usr/share/wallpapers/$name/contents/images/2560x1600.jpg
  done
  mv test.tmp test
fi
